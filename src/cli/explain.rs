//! `trailcedar explain`: the Cedar request an event becomes, its entities, and how each
//! candidate policy decides it, for debugging a rule that does or does not fire.

use super::load_pack;
use crate::decode::{self, RecordData};
use crate::engine::{BASELINE, Engine};
use crate::model::EventView;
use crate::model::aws_ranges::AwsRanges;
use crate::model::resource::resources_of;
use crate::report::sanitize::{SafeJson, terminal};
use crate::source::Input;
use cedar_policy::{Decision, Effect};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::PathBuf;

/// `trailcedar explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// A file with CloudTrail events (any shape; `-` for standard input).
    #[arg(value_name = "EVENT_FILE")]
    pub file: PathBuf,

    /// Which record of the file (0-based).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub record: u64,

    /// Directories of .cedar policies (repeatable). Default: the pack built into trailcedar.
    #[arg(short, long, value_name = "DIR")]
    pub policies: Vec<PathBuf>,

    #[command(flatten)]
    pub inventory: super::InventoryArgs,

    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Explains one record; exit code 0, or 1 when the record is flagged.
pub fn run(args: &ExplainArgs) -> Result<u8, String> {
    let pack = load_pack(&args.policies)?;
    let inventory = args.inventory.load(true)?;
    let engine = Engine::new(pack, AwsRanges::embedded())?.with_inventory(inventory);
    let input = if args.file.as_os_str() == "-" {
        Input::Stdin
    } else {
        Input::File(args.file.clone())
    };
    let bytes = decode::read_input(&input, 512 << 20)
        .map_err(|e| format!("{}: {e}", input.display_name()))?;
    let text = decode::as_text(&bytes).map_err(|e| format!("{}: {e}", input.display_name()))?;
    let mut found: Option<Result<String, String>> = None;
    let mut count = 0u64;
    let mut doc = Value::Null;
    decode::for_each_record(text, 0, &mut |r| {
        count += 1;
        if r.index == args.record {
            found = Some(explain_record(&engine, r.data).map(|(t, d)| {
                doc = d;
                t
            }));
        }
    })
    .map_err(|e| format!("{}: {e}", input.display_name()))?;
    let text = match found {
        Some(t) => t?,
        None => {
            return Err(format!(
                "{} has {count} record(s); there is no record {}",
                input.display_name(),
                args.record
            ));
        }
    };
    let flagged = doc.get("flagged").and_then(Value::as_bool).unwrap_or(false);
    if args.json {
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, SafeJson);
        serde::Serialize::serialize(&doc, &mut ser).map_err(|e| e.to_string())?;
        println!("{}", String::from_utf8_lossy(&out));
    } else {
        let header = format!("record {} of {}", args.record, input.display_name());
        print!("{}\n{text}", terminal(&header));
    }
    Ok(u8::from(flagged))
}

/// Indented JSON for reading in a terminal: JSON escapes C0 controls inside strings, and each
/// line is sanitised for the rest (DEL, C1, bidirectional overrides).
fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v)
        .unwrap_or_default()
        .lines()
        .map(|l| terminal(l).into_owned() + "\n")
        .collect()
}

fn indent(s: &str, by: &str) -> String {
    s.lines().map(|l| format!("{by}{l}\n")).collect()
}

/// The parts that decided, then the values they read, indented under a policy's line.
fn write_explanation(out: &mut String, explanation: &crate::engine::Explanation) {
    let t = |s: &str| terminal(s).into_owned();
    for part in &explanation.decided_by {
        let actual = part
            .actual
            .as_ref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        let state = if part.value { "true: " } else { "false:" };
        let _ = writeln!(out, "         {state} {}{}", t(&part.part), t(&actual));
    }
    for (label, value) in &explanation.values {
        match value {
            Some(v) => {
                let _ = writeln!(out, "         {} = {}", t(label), t(&v.cedar));
            }
            None => {
                let _ = writeln!(out, "         {} absent", t(label));
            }
        }
    }
    for note in &explanation.notes {
        let _ = writeln!(out, "         note: {}", t(note));
    }
}

fn decided_json(explanation: &crate::engine::Explanation) -> Value {
    explanation
        .decided_by
        .iter()
        .map(|p| json!({"part": p.part, "value": p.value, "actual": p.actual}))
        .collect()
}

fn values_json(explanation: &crate::engine::Explanation) -> Value {
    explanation
        .values
        .iter()
        .map(|(l, v)| match v {
            Some(v) => json!({"field": l, "value": v.json, "cedar": v.cedar}),
            None => json!({"field": l, "value": null}),
        })
        .collect()
}

/// What a candidate feeds: its correlation (this event decides only its per-event part) and
/// the sequences it is a step of, with the group this event is in when it matched.
fn correlation_part(
    engine: &Engine,
    member: usize,
    view: &EventView,
    principal: &crate::model::PrincipalModel,
    resource: Option<&crate::model::ResourceModel>,
    satisfied: bool,
) -> (Vec<String>, Value) {
    let Some(d) = engine.pack.detections.get(member) else {
        return (Vec::new(), Value::Null);
    };
    if d.keyings.is_empty() {
        return (Vec::new(), json!([]));
    }
    let keys = match (satisfied, resource) {
        (true, Some(r)) => engine
            .full_request(view, principal, r)
            .and_then(|(request, entities)| engine.keys_of(member, view, &request, &entities))
            .map(|k| k.to_vec()),
        _ => Ok(Vec::new()),
    };
    let mut lines = Vec::new();
    let mut docs = Vec::new();
    for k in &d.keyings {
        let Some((id, c)) = engine
            .pack
            .detections
            .get(k.correlation)
            .and_then(|c| Some((c.id.as_str(), c.correlation.as_deref()?)))
        else {
            continue;
        };
        let role = if k.correlation == member {
            "correlation (this event decides its per-event part)".to_string()
        } else {
            format!("step {} of {id}", k.step + 1)
        };
        lines.push(format!("{role}: {}", c.describe()));
        let key = keys.as_ref().ok().and_then(|keys| {
            keys.iter()
                .find(|x| x.correlation == k.correlation && x.step == k.step)
        });
        let mut group = Vec::new();
        if let Some(key) = key {
            for (g, v) in c.group.iter().zip(&key.group) {
                let v = v.shown();
                lines.push(format!("  group {} = {}", g.text, v.cedar));
                group.push(json!({"field": g.text, "value": v.json, "cedar": v.cedar}));
            }
            if !key.distinct.is_empty() {
                let values: Vec<String> = key.distinct.iter().map(|v| v.cedar()).collect();
                lines.push(format!("  distinct {}", values.join(", ")));
            }
        }
        if let Err(e) = &keys {
            lines.push(format!("  error: {e}"));
        }
        docs.push(json!({
            "correlation": id,
            "step": k.step,
            "rule": c.describe(),
            "group": group,
            "distinct": key.map(|k| k.distinct.iter().map(|v| v.cedar()).collect::<Vec<_>>()),
        }));
    }
    (lines, Value::Array(docs))
}

fn explain_record(engine: &Engine, data: RecordData<'_>) -> Result<(String, Value), String> {
    let view = EventView::new(data.into_event()?)?;
    let principal = engine.principal(&view)?;
    let resources = resources_of(&view, &principal)?;
    let candidates = engine.candidates(&view, &principal).clone();
    let t = |s: &str| terminal(s).into_owned();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  {} by {} {} at {} (eventID {})\n",
        t(&view.event.action_id()),
        principal.kind.type_name(),
        t(&principal.display()),
        view.time,
        t(view.event_id())
    );
    let mut requests = Vec::new();
    let mut flagged = false;
    let mut decisions: Vec<Vec<Value>> = vec![Vec::new(); candidates.members.len()];
    let responses = engine.cedar_responses(&view, &principal)?;
    for (ri, resource) in resources.iter().enumerate() {
        let (request, entities) = engine.full_request(&view, &principal, resource)?;
        let context = request
            .context()
            .map(|c| c.clone().to_json_value().unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        let entities_json = entities.to_json_value().unwrap_or(Value::Null);
        let _ = writeln!(
            out,
            "request {} of {} (one per resource)",
            ri + 1,
            resources.len()
        );
        let _ = writeln!(out, "  principal  {}", t(&principal.uid.to_string()));
        let _ = writeln!(
            out,
            "  action     {}",
            t(&crate::model::action_uid(&view.event.action_id()).to_string())
        );
        let _ = writeln!(out, "  resource   {}", t(&resource.uid.to_string()));
        let _ = writeln!(out, "  context\n{}", indent(&pretty(&context), "    "));
        let _ = writeln!(
            out,
            "  entities (Cedar JSON)\n{}",
            indent(&pretty(&entities_json), "    ")
        );
        for (ci, &member) in candidates.members.iter().enumerate() {
            let decision = match engine.satisfied(member, &view, &request, &entities) {
                Ok(b) => json!(b),
                Err(e) => json!({ "error": e }),
            };
            if let Some(slot) = decisions.get_mut(ci) {
                slot.push(decision);
            }
        }
        // The pack's response, then its `@each` policies' on each element.
        let responses_of = responses
            .get(ri)
            .map(|(_, r)| r.as_slice())
            .unwrap_or_default();
        let response = responses_of.first();
        let reasons: Vec<String> = responses_of
            .iter()
            .flat_map(|r| r.diagnostics().reason().map(|p| p.to_string()))
            .filter(|id| id != crate::engine::BASELINE)
            .collect();
        let forbidden = reasons.iter().any(|id| {
            engine
                .pack
                .detections
                .iter()
                .any(|d| &d.id == id && d.effect == Effect::Forbid)
        });
        let denied = response.is_some_and(|r| r.decision() == Decision::Deny) || forbidden;
        flagged |= denied;
        requests.push(json!({
            "principal": principal.uid.to_string(),
            "action": crate::model::action_uid(&view.event.action_id()).to_string(),
            "resource": resource.uid.to_string(),
            "context": context,
            "entities": entities_json,
            "cedar": {
                "decision": if denied { "Deny" } else { "Allow" },
                "reason": reasons,
                "flagged": denied,
                "byDetection": forbidden,
            }
        }));
    }
    let _ = writeln!(
        out,
        "candidates: {} of {} policies (indexed by action {}, principal type {} and {})",
        candidates.members.len(),
        engine.pack.detections.len(),
        t(&view.event.action_id()),
        principal.kind.type_name(),
        match &view.event.error_code {
            Some(code) => format!("the call's failure ({})", t(code)),
            None => "the call's success".to_string(),
        }
    );
    let mut candidate_docs = Vec::new();
    let first = resources.first();
    for (ci, &member) in candidates.members.iter().enumerate() {
        let Some(d) = engine.pack.detections.get(member) else {
            continue;
        };
        let per_resource = decisions.get(ci).cloned().unwrap_or_default();
        let satisfied = per_resource.iter().any(|v| v == &json!(true));
        let errors: Vec<String> = per_resource
            .iter()
            .filter_map(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .collect();
        let verdict = match (d.effect, satisfied, errors.is_empty()) {
            (_, _, false) => "ERROR",
            // Counted by its correlations rather than reported on its own.
            (Effect::Forbid, true, _) if !d.reported_alone() => "MATCH",
            (Effect::Forbid, true, _) => "FLAG",
            (Effect::Permit, true, _) => "permit",
            _ => "-",
        };
        let _ = writeln!(
            out,
            "  {verdict:<6} {}  {}:{}",
            t(&d.id),
            t(&d.file),
            d.line
        );
        for e in &errors {
            let _ = writeln!(out, "         error: {}", t(e));
        }
        let explanation = first
            .map(|r| engine.explain_values(&[member], &view, &principal, r))
            .unwrap_or_default();
        write_explanation(&mut out, &explanation);
        let correlations = correlation_part(engine, member, &view, &principal, first, satisfied);
        for line in &correlations.0 {
            let _ = writeln!(out, "         {}", t(line));
        }
        candidate_docs.push(json!({
            "id": d.id,
            "file": d.file,
            "line": d.line,
            "effect": if d.effect == Effect::Forbid { "forbid" } else { "permit" },
            "kind": d.kind(),
            "satisfied": per_resource,
            "decidedBy": decided_json(&explanation),
            "values": values_json(&explanation),
            "notes": explanation.notes,
            "correlations": correlations.1,
        }));
    }
    // Policies for this action that the principal's type, or the call's outcome their condition
    // requires, keeps out of the candidates: the rule an author expected to fire may be one.
    let action = crate::engine::analysis::ActionKey::Exact {
        service: view.event.service().to_string(),
        name: view.event.event_name.to_string(),
    };
    let service = crate::engine::analysis::ActionKey::Service(view.event.service().to_string());
    let excluded: Vec<usize> = (0..engine.pack.detections.len())
        .filter(|i| !candidates.members.contains(i))
        .filter(|i| {
            engine.pack.detections.get(*i).is_some_and(|d| {
                d.analysis
                    .actions
                    .as_ref()
                    .is_none_or(|a| a.contains(&action) || a.contains(&service))
            })
        })
        .collect();
    let failed = view.event.error_code.is_some();
    let mut excluded_docs = Vec::new();
    if !excluded.is_empty() {
        let _ = writeln!(
            out,
            "not candidates: their scope names this action, but not a {} principal or not a call that {}",
            principal.kind.type_name(),
            if failed { "failed" } else { "succeeded" }
        );
    }
    for i in excluded {
        let Some(d) = engine.pack.detections.get(i) else {
            continue;
        };
        let _ = writeln!(out, "  -      {}  {}:{}", t(&d.id), t(&d.file), d.line);
        // Set aside by the index for the call's outcome, which its condition requires.
        if let Some(required) = d.analysis.prefilter.error_code()
            && required != failed
        {
            let _ = writeln!(
                out,
                "         its condition requires a call that {}",
                if required {
                    "failed (context has errorCode)"
                } else {
                    "succeeded (!(context has errorCode))"
                }
            );
        }
        let explanation = first
            .map(|r| engine.explain_values(&[i], &view, &principal, r))
            .unwrap_or_default();
        write_explanation(&mut out, &explanation);
        excluded_docs.push(json!({
            "id": d.id,
            "file": d.file,
            "line": d.line,
            "decidedBy": decided_json(&explanation),
        }));
    }
    let mode = if engine.pack.mode == crate::engine::pack::Mode::Detection {
        format!("the whole pack and the baseline permit `{BASELINE}`")
    } else {
        "the whole pack (allow-list mode)".to_string()
    };
    let summary: Vec<String> = requests
        .iter()
        .map(|r| {
            let reasons: Vec<&str> = r
                .pointer("/cedar/reason")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "{} ({})",
                r.pointer("/cedar/decision")
                    .and_then(Value::as_str)
                    .unwrap_or("?"),
                if reasons.is_empty() {
                    "no policy satisfied".to_string()
                } else {
                    reasons.join(", ")
                }
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "\nCedar's Authorizer::is_authorized with {mode}: {}\n{}",
        summary.join("; "),
        if flagged { "flagged" } else { "allowed" }
    );
    let doc = json!({
        "eventID": view.event_id(),
        "action": view.event.action_id(),
        "flagged": flagged,
        "requests": requests,
        "candidates": candidate_docs,
        "excluded": excluded_docs,
    });
    Ok((out, doc))
}
