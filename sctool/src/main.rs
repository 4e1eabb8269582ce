//! `sctool check <ELF>...` and `sctool sites <ELF> --key NAME`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Checks the static-call site tables and trampolines of built ELF files.
#[derive(Debug, Parser)]
#[command(name = "sctool", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Checks every file; exit 0: no errors, 1: errors found, 2: a file
    /// cannot be read or is not an x86-64 ELF executable or shared object.
    Check {
        /// Executables and shared objects.
        #[arg(required = true)]
        files: Vec<String>,
        /// Print the report as JSON (one array, one object per file).
        #[arg(long)]
        json: bool,
        /// List every site too.
        #[arg(long)]
        sites: bool,
    },
    /// Prints the decoded sites and trampoline of one key.
    Sites {
        /// An executable or shared object.
        file: String,
        /// The key's name, or the last part of its path.
        #[arg(long)]
        key: String,
        /// Print the key's part of the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { files, json, sites } => {
            let mut reports = Vec::new();
            let mut unreadable = false;
            for f in &files {
                match sctool::check_file(f) {
                    Ok(r) => {
                        if !json {
                            print!("{}", sctool::render::report(&r, sites));
                        }
                        reports.push(r);
                    }
                    Err(e) => {
                        eprintln!("sctool: {e}");
                        unreadable = true;
                    }
                }
            }
            if json {
                match serde_json::to_string_pretty(&reports) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("sctool: JSON: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            if unreadable {
                ExitCode::from(2)
            } else if reports.iter().any(sctool::Report::has_errors) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Cmd::Sites { file, key, json } => {
            let r = match sctool::check_file(&file) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("sctool: {e}");
                    return ExitCode::from(2);
                }
            };
            let text = sctool::render::key_sites(&r, &key);
            let Some(text) = text else {
                eprintln!("sctool: {file}: no key named {key:?}");
                return ExitCode::from(2);
            };
            if json {
                let m = |n: &str| n == key || n.ends_with(&format!("::{key}"));
                let v = serde_json::json!({
                    "keys": r.keys.iter().filter(|k| m(&k.name)).collect::<Vec<_>>(),
                    "sites": r.sites.iter().filter(|s| m(&s.key)).collect::<Vec<_>>(),
                });
                println!("{v:#}");
            } else {
                print!("{text}");
            }
            let errors = r
                .findings
                .iter()
                .any(|f| f.severity == sctool::Severity::Error && f.message.contains(&key));
            if errors {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
