//! `numikube-staging`: see [`numikube_staging::cli`].

fn main() -> std::process::ExitCode {
    numikube_staging::cli::main()
}
