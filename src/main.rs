//! The `hookgate` command: flags, logging, config loading, and the subcommands.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use hookgate::config::{self, RawVerify};
use hookgate::verify::{KeyMaterial, SignedRequest, SigningKey, UnixTime, presets};

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
    Sign(Box<SignArgs>),
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
    #[arg(long, env = "HOOKGATE_SECRET", hide_env_values = true, conflicts_with_all = ["secret_file", "private_key_file"])]
    secret: Option<String>,
    /// Read the shared secret from this file (trailing newline trimmed).
    #[arg(long, conflicts_with = "private_key_file")]
    secret_file: Option<PathBuf>,
    /// The sender's private key (PKCS#8 PEM, or hex/base64 of the raw key) for Ed25519 and
    /// ECDSA schemes.
    #[arg(long)]
    private_key_file: Option<PathBuf>,
    /// Sign as this route of --config does (its scheme, and its first secret unless a key is given).
    #[arg(long, requires = "config", conflicts_with = "scheme")]
    route: Option<String>,
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The body to sign; standard input when absent.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// Timestamp text to sign instead of now (schemes with a timestamp).
    #[arg(long)]
    timestamp: Option<String>,
    /// The public URL the request goes to (schemes that sign it: twilio, square, hubspot).
    #[arg(long)]
    url: Option<String>,
    /// The request method (hubspot signs it; twilio treats GET differently).
    #[arg(long, default_value = "POST")]
    method: String,
    /// A request header the signature covers or depends on, `Name: value` (repeatable),
    /// e.g. `Content-Type: application/x-www-form-urlencoded` for form bodies.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Where to write the body, for schemes that sign inside it (mailgun).
    #[arg(long)]
    body_out: Option<PathBuf>,
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
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in a log file or a collector.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// One thread when the process may use one CPU (a pinned process, a container with a 1-CPU
/// quota): work stealing has no one to steal from and only adds wake-ups. Else one worker per CPU.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let mut builder = match cpus {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build().context("starting the async runtime")
}

fn serve(path: PathBuf) -> anyhow::Result<()> {
    let config = config::load(&path)?;
    runtime()?.block_on(async {
        // Installed before binding, so a SIGTERM right after startup still drains and exits 0.
        let stop = stop_signal()?;
        let gateway = hookgate::Gateway::bind(config.clone())
            .await
            .with_context(|| format!("binding {} and {}", config.listen, config.admin_listen))?;
        let (stop_watching, watching_stopped) = tokio::sync::oneshot::channel::<()>();
        let watch = gateway
            .reloader(path)
            .watch(async { drop(watching_stopped.await) })
            .context("installing the SIGHUP handler")?;
        let watcher = tokio::spawn(watch);
        gateway.serve(stop).await;
        let _ = stop_watching.send(());
        watcher.await.context("the config watcher")?;
        Ok(())
    })
}

/// A future that completes on SIGTERM or SIGINT; the handlers are installed when this returns.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
        }
    })
}

fn check(path: PathBuf) -> anyhow::Result<()> {
    let config = config::load(&path)?;
    println!("{}: ok, {} route(s)", path.display(), config.routes.len());
    Ok(())
}

fn sign(args: Box<SignArgs>) -> anyhow::Result<()> {
    let (scheme, route_secret) = match (&args.route, &args.config) {
        (Some(route_name), Some(path)) => {
            let config = config::load(path)?;
            let route = config.routes.into_iter().find(|r| &r.name == route_name);
            let route = route.with_context(|| format!("no route named {route_name:?} in {}", path.display()))?;
            let now = UnixTime::now();
            let secret = route.keys.iter().filter(|key| key.is_active(now)).find_map(|key| match &key.material {
                KeyMaterial::Shared(secret) => Some(SigningKey::Shared(secret.clone())),
                KeyMaterial::Ed25519(_) | KeyMaterial::P256(_) => None,
            });
            (route.scheme, secret)
        }
        _ => {
            let name = args.scheme.clone().context("--scheme or --route is required")?;
            // A private key picks the scheme's public-key variant (Standard Webhooks v1a), as a
            // route with `public_key:` does.
            let public_key = args.private_key_file.as_ref().map(|_| String::new());
            let raw = RawVerify { scheme: name, public_key, ..RawVerify::default() };
            (config::scheme(&raw).map_err(anyhow::Error::msg)?, None)
        }
    };
    let read = |file: &PathBuf| std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()));
    let key_text = match (&args.secret, &args.secret_file, &args.private_key_file) {
        (Some(secret), _, _) => Some(secret.clone()),
        (None, Some(file), _) | (None, None, Some(file)) => Some(read(file)?.trim_end_matches(['\n', '\r']).to_owned()),
        (None, None, None) => None,
    };
    let key = match (key_text, route_secret) {
        (Some(text), _) if text.is_empty() => bail!("the key is empty"),
        (Some(text), _) => config::keys::signing_key(scheme.key_kind(), &text).map_err(anyhow::Error::msg)?,
        (None, Some(secret)) => secret,
        (None, None) => bail!("give --secret, HOOKGATE_SECRET, --secret-file or --private-key-file"),
    };
    let body = match &args.body_file {
        Some(file) => std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
        None => {
            let mut body = Vec::new();
            std::io::stdin().read_to_end(&mut body).context("reading the body from standard input")?;
            body
        }
    };
    let mut headers = http::HeaderMap::new();
    for line in &args.headers {
        let (name, value) = line.split_once(':').with_context(|| format!("--header {line:?} is not `Name: value`"))?;
        let name = http::HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("bad header name in {line:?}"))?;
        headers.append(
            name,
            http::HeaderValue::from_str(value.trim()).with_context(|| format!("bad header value in {line:?}"))?,
        );
    }
    let method = http::Method::from_bytes(args.method.as_bytes()).context("--method")?;
    let request = SignedRequest {
        method: &method,
        url: args.url.as_deref(),
        headers: &headers,
        body: &hookgate::body::Body::from(body),
    };
    let signature = scheme
        .sign(&key, request, UnixTime::now(), args.timestamp.as_deref())
        .map_err(|rejection| anyhow::anyhow!("cannot sign this request with {}: {rejection}", scheme.name))?;
    match (signature.body, &args.body_out) {
        (Some(body), Some(file)) => {
            std::fs::write(file, body).with_context(|| format!("writing {}", file.display()))?
        }
        (Some(_), None) => bail!("{} signs inside the body: give --body-out FILE for the signed body", scheme.name),
        (None, _) => {}
    }
    for (name, value) in signature.headers {
        println!("{}: {}", name, value.to_str().expect("signature headers are ASCII"));
    }
    Ok(())
}

fn schemes() {
    println!("{:<18} {:<30} {:<44} SIGNED MESSAGE", "SCHEME", "PROVIDER", "SIGNATURE HEADER");
    for preset in presets::PRESETS {
        let summary = preset.summary();
        let plain = |text: &str| text.replace('`', "");
        println!(
            "{:<18} {:<30} {:<44} {}",
            preset.name,
            preset.provider,
            plain(&summary.headers),
            plain(&summary.message)
        );
        println!("{:<18} {:<30} value: {}; timestamp: {}", "", "", plain(&summary.value), plain(&summary.timestamp));
    }
    println!(
        "{:<18} {:<30} (configured: header, algorithm, encoding, prefix, timestamp_header, message)",
        "hmac", "(generic)"
    );
}

fn echo(listen: std::net::SocketAddr) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let listener = hookgate::server::listen(listen).with_context(|| format!("binding {listen}"))?;
        tracing::info!(%listen, "echo upstream ready");
        hookgate::server::serve_echo(listener, stop_signal()?).await;
        Ok(())
    })
}
