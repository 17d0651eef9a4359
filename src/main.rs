//! The `hookgate` command: flags, logging, config loading, and the subcommands.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use hookgate::config::{self, RawVerify, secret::Secret};
use hookgate::verify::{UnixTime, presets};

/// A reverse proxy that verifies webhook signatures before forwarding.
#[derive(Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Serve with this config (same as `hookgate run --config FILE`).
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve: verify and forward webhooks.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config; exit 1 listing every problem.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the headers a sender would attach to a body, one `name: value` per line.
    Sign(SignArgs),
    /// List the named schemes and their headers.
    Schemes {
        /// Print the README's markdown table instead.
        #[arg(long)]
        markdown: bool,
    },
    /// Run the built-in echo upstream: answers 200 with the body it received.
    Echo {
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: std::net::SocketAddr,
    },
}

#[derive(clap::Args)]
struct SignArgs {
    /// A named scheme (see `hookgate schemes`); or use --config with --route.
    #[arg(long, required_unless_present = "route")]
    scheme: Option<String>,
    /// The shared secret. Prefer HOOKGATE_SECRET or --secret-file: arguments show in `ps`.
    #[arg(long, env = "HOOKGATE_SECRET", hide_env_values = true, conflicts_with = "secret_file")]
    secret: Option<String>,
    /// Read the secret from this file (trailing newline trimmed).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Sign as this route of --config does (its scheme and first secret).
    #[arg(long, requires = "config", conflicts_with = "scheme")]
    route: Option<String>,
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The body to sign; standard input when absent.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// Timestamp header text to sign instead of now (schemes with a timestamp).
    #[arg(long)]
    timestamp: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match (cli.command, cli.config) {
        (Some(Command::Run { config }), _) | (None, Some(config)) => serve(config),
        (Some(Command::Check { config }), _) => check(config),
        (Some(Command::Sign(args)), _) => sign(args),
        (Some(Command::Schemes { markdown: true }), _) => {
            print!("{}", presets::markdown_table());
            Ok(())
        }
        (Some(Command::Schemes { markdown: false }), _) => {
            schemes();
            Ok(())
        }
        (Some(Command::Echo { listen }), _) => echo(listen),
        (None, None) => {
            eprintln!("hookgate: give --config FILE to serve, or a subcommand (see --help)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

fn serve(path: PathBuf) -> anyhow::Result<()> {
    let config = config::load(&path)?;
    runtime()?.block_on(async {
        let gateway = hookgate::Gateway::bind(config.clone())
            .await
            .with_context(|| format!("binding {} and {}", config.listen, config.admin_listen))?;
        gateway.serve(stop_signal()).await;
        Ok(())
    })
}

/// Completes on SIGTERM or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler at startup");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

fn check(path: PathBuf) -> anyhow::Result<()> {
    let config = config::load(&path)?;
    println!("{}: ok, {} route(s)", path.display(), config.routes.len());
    Ok(())
}

fn sign(args: SignArgs) -> anyhow::Result<()> {
    let (scheme, secret) = match (&args.route, &args.config) {
        (Some(route_name), Some(path)) => {
            let config = config::load(path)?;
            let route = config.routes.into_iter().find(|r| &r.name == route_name);
            let route = route.with_context(|| format!("no route named {route_name:?} in {}", path.display()))?;
            let secret = route.secrets.into_iter().next().expect("a validated route has a secret");
            (route.scheme, secret)
        }
        _ => {
            let name = args.scheme.clone().context("--scheme or --route is required")?;
            let raw = RawVerify { scheme: name, ..RawVerify::default() };
            let scheme = config::scheme(&raw).map_err(anyhow::Error::msg)?;
            let secret = match (&args.secret, &args.secret_file) {
                (Some(secret), _) => secret.clone(),
                (None, Some(file)) => {
                    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
                    text.trim_end_matches(['\n', '\r']).to_owned()
                }
                (None, None) => bail!("give --secret, HOOKGATE_SECRET or --secret-file"),
            };
            if secret.is_empty() {
                bail!("the secret is empty");
            }
            (scheme, Secret::new(secret))
        }
    };
    let body = match &args.body_file {
        Some(file) => std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
        None => {
            let mut body = Vec::new();
            std::io::stdin().read_to_end(&mut body).context("reading the body from standard input")?;
            body
        }
    };
    let headers = scheme
        .rule
        .sign(&secret, &body, UnixTime::now(), args.timestamp.as_deref())
        .map_err(|rejection| anyhow::anyhow!("cannot sign this body with {}: {rejection}", scheme.name))?;
    for (name, value) in headers {
        println!("{}: {}", name, value.to_str().expect("signature headers are ASCII"));
    }
    Ok(())
}

fn schemes() {
    println!("{:<12} {:<26} {:<26} {:<36} SIGNED MESSAGE", "SCHEME", "PROVIDER", "SIGNATURE HEADER", "HEADER VALUE");
    for preset in presets::PRESETS {
        println!(
            "{:<12} {:<26} {:<26} {:<36} {}",
            preset.name,
            preset.provider,
            preset.signature_headers.join(", "),
            preset.value_format(),
            preset.message
        );
        if let Some(timestamp) = &preset.timestamp {
            println!("{:<12} {:<26} timestamp: {}", "", "", timestamp.describe().replace('`', ""));
        }
    }
    println!(
        "{:<12} {:<26} (configured: header, algorithm, encoding, prefix, timestamp_header, message)",
        "hmac", "(generic)"
    );
}

fn echo(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        tracing::info!(%listen, "echo upstream ready");
        hookgate::server::serve_echo(listener, stop_signal()).await;
        Ok(())
    })
}
