//! `atoll`: realm tooling for the normal world and relying parties.
//!
//! One module per subcommand; each defines its clap `Args` and a `run`
//! function. Add a subcommand by adding a module and a [`Command`] variant.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod image;
mod measure;
mod metadata;
mod push;
mod sign;
mod token;

/// Command-line interface.
#[derive(Parser)]
#[command(name = "atoll", version, about = "Atoll realm tooling")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Package directories as an OCI image for signing and deployment.
    Image(image::Args),
    /// Compute a realm's initial measurement (RIM) from its description.
    Measure(measure::Args),
    /// Create, verify and dump Islet realm metadata blocks.
    Metadata(metadata::Args),
    /// Push an OCI image layout (image or signature) to a registry.
    Push(push::Args),
    /// Sign OCI images and verify their signatures (root CA, vendors).
    Sign(sign::Args),
    /// Show, verify and appraise CCA attestation tokens.
    Token(token::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Image(args) => image::run(&args),
        Command::Measure(args) => measure::run(&args),
        Command::Metadata(args) => metadata::run(&args),
        Command::Push(args) => push::run(&args),
        Command::Sign(args) => sign::run(&args),
        Command::Token(args) => token::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("atoll: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
