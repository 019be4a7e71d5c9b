//! The `carillon` binary: `carillon node`, `carillon demo`, `carillon ctl`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = carillon_node::cli::Cli::parse();
    carillon_node::cli::main(cli)
}
