use clap::Parser;

fn main() {
    let cli = bessmon::cli::Cli::parse();
    let code = bessmon::cli::main(cli);
    std::process::exit(code);
}
