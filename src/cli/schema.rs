//! `trailcedar schema`: the Cedar schema of the model, with every action of the catalog.

use super::pack_sources;
use crate::engine::pack::ACTIONS_FILE;
use crate::model::actions::Catalog;
use crate::model::schema::catalog_schema_text;
use cedar_policy::SchemaFragment;
use std::io::Write;
use std::path::PathBuf;

/// `trailcedar schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// Print Cedar's JSON schema format instead of the human-readable one.
    #[arg(long)]
    pub json: bool,

    /// Packs whose `actions.txt` adds actions to the catalog.
    #[arg(short, long, value_name = "DIR")]
    pub policies: Vec<PathBuf>,
}

/// The catalog with the actions the packs in `dirs` add.
pub fn catalog_for(dirs: &[PathBuf]) -> Result<Catalog, String> {
    let mut catalog = Catalog::embedded().clone();
    if dirs.is_empty() {
        return Ok(catalog);
    }
    let (sources, _) = pack_sources(dirs)?;
    for s in sources.iter().filter(|s| s.name.ends_with(ACTIONS_FILE)) {
        if let Some((line, text)) = catalog.extend_from(&s.text).first() {
            return Err(format!("{}:{line}: {text:?} is not an action", s.name));
        }
    }
    Ok(catalog)
}

/// Prints the schema; the exit code.
pub fn run(args: &SchemaArgs) -> Result<u8, String> {
    let catalog = catalog_for(&args.policies)?;
    let text = catalog_schema_text(&catalog);
    let out = if args.json {
        let (fragment, _) =
            SchemaFragment::from_cedarschema_str(&text).map_err(|e| e.to_string())?;
        let value = fragment.to_json_value().map_err(|e| e.to_string())?;
        serde_json::to_string_pretty(&value).map_err(|e| e.to_string())? + "\n"
    } else {
        format!(
            "// Actions: {} ({} actions).\n{text}",
            catalog.source,
            catalog.len()
        )
    };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(0),
    }
}
