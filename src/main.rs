use clap::Parser;

fn main() {
    let cli = match bessmon::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are not errors; a bad argument is invalid input (exit 1).
            std::process::exit(if e.use_stderr() { 1 } else { 0 });
        }
    };
    std::process::exit(bessmon::cli::main(cli));
}
