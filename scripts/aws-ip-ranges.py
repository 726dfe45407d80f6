#!/usr/bin/env python3
"""Regenerate src/model/aws-ip-ranges.txt from AWS's published address ranges.

Usage:
    curl -sO https://ip-ranges.amazonaws.com/ip-ranges.json
    python3 scripts/aws-ip-ranges.py ip-ranges.json > src/model/aws-ip-ranges.txt

Every IPv4 and IPv6 prefix of every service is merged into the fewest CIDR blocks; the
first line records which publication the table was built from. At run time,
`--aws-ip-ranges FILE` replaces the embedded table with a newer ip-ranges.json.
"""
import ipaddress
import json
import sys


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        data = json.load(f)
    v4 = [ipaddress.ip_network(p["ip_prefix"]) for p in data["prefixes"]]
    v6 = [ipaddress.ip_network(p["ipv6_prefix"]) for p in data["ipv6_prefixes"]]
    print(f"# AWS ip-ranges.json syncToken={data['syncToken']} createDate={data['createDate']}")
    for net in ipaddress.collapse_addresses(v4):
        print(net)
    for net in ipaddress.collapse_addresses(v6):
        print(net)


if __name__ == "__main__":
    main()
