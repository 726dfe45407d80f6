fn main() -> std::process::ExitCode {
    trailcedar::cli::main()
}
