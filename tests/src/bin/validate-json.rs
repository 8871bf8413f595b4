//! `validate-json SCHEMA FILE`: checks a JSON file, or a JSON-lines file (one
//! document per line, as the module writes records), against a JSON Schema with the
//! same validator the tests use (gatelog_e2e::schema). Prints `N documents valid`,
//! or the first error with its line number and exits 1; bad usage exits 2.
//! The benchmark runs it on the generated records:
//! `cargo run --release -q -p gatelog-e2e --bin validate-json -- docs/gatelog.v1.schema.json FILE`.

use std::path::Path;
use std::process::ExitCode;

use gatelog_e2e::schema::{self, Schema};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [schema_path, file] = args.as_slice() else {
        eprintln!("usage: validate-json SCHEMA FILE (a JSON document or JSON lines)");
        return ExitCode::from(2);
    };
    let schema = match Schema::load(Path::new(schema_path)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("validate-json: {e}");
            return ExitCode::from(2);
        }
    };
    match schema::validate_file(&schema, Path::new(file)) {
        Ok(n) => {
            println!("{n} documents valid");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!(
                "{file}:{}: {} ({})",
                e.line,
                e.message,
                schema.path().display()
            );
            ExitCode::from(1)
        }
    }
}
