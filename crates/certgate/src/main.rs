//! The `certgate` binary: parse the command line, load the configuration (reporting
//! every problem), run until SIGTERM/SIGINT, reload on SIGHUP.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::signal::unix::{signal, SignalKind};

use certgate::config::{Config, ProcessEnv};

/// mimalloc instead of glibc malloc: the request path allocates (hyper's header maps,
/// rustls records, futures) and glibc's malloc/free were ~11 % of the CPU under load;
/// mimalloc's per-thread free lists make those calls a few instructions each.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "certgate",
    version,
    about = "Tyk-compatible API gateway with mTLS Certificate Authentication"
)]
struct Cli {
    /// Configuration file (Tyk's tyk.conf format).
    #[arg(long, value_name = "FILE", default_value = "tyk.conf", global = true)]
    conf: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a self-contained demo: demo PKI, config and an example API with a built-in
    /// upstream, generated on first run into DIR.
    Demo {
        /// Folder for the demo's certificates, config, APIs and data.
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        /// Port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
}

/// One core (the usual container or pinned deployment): a current-thread runtime, which
/// skips the work-stealing scheduler's cross-thread wake-ups and atomics. More cores: the
/// multi-threaded runtime, one worker per core. `CERTGATE_RUNTIME=current|multi` overrides
/// the choice (measurements in docs/performance.md).
fn runtime_builder() -> tokio::runtime::Builder {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let current = match std::env::var("CERTGATE_RUNTIME").as_deref() {
        Ok("current") => true,
        Ok("multi") => false,
        _ => cores == 1,
    };
    if current {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CERTGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match runtime_builder().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("certgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Some(Command::Demo { dir, port }) => match certgate::demo::prepare(&dir, port).await {
                Ok(demo) => run(demo.config.clone(), Some(demo)).await,
                Err(e) => {
                    eprintln!("certgate demo: {e}");
                    ExitCode::FAILURE
                }
            },
            None => match Config::load(&cli.conf, &ProcessEnv) {
                Ok(cfg) => run(cfg, None).await,
                Err(e) => {
                    eprintln!("certgate: {e}");
                    ExitCode::from(2)
                }
            },
        }
    })
}

async fn run(cfg: Config, demo: Option<certgate::demo::Demo>) -> ExitCode {
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            eprintln!("certgate: cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let running = match certgate::app::start(cfg).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("certgate: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let scheme = if running.gw.config.http_server_options.use_ssl {
        "https"
    } else {
        "http"
    };
    eprintln!("certgate: listening on {scheme}://{}", running.addr);
    if let Some(c) = running.control_addr {
        eprintln!("certgate: Gateway API on {scheme}://{c}");
    }
    if let Some(demo) = &demo {
        if let Err(e) = demo.bootstrap(&running.gw).await {
            eprintln!("certgate demo: {e}");
            running.shutdown().await;
            return ExitCode::FAILURE;
        }
        println!("{}", demo.instructions(running.addr.port()));
    }
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let gw = running.gw.clone();
                tokio::spawn(async move {
                    let report = gw.reload().await;
                    eprintln!("certgate: reloaded, {} APIs live, {} errors", report.loaded, report.errors.len());
                });
            }
        }
    }
    eprintln!("certgate: shutting down");
    running.shutdown().await;
    drop(demo);
    ExitCode::SUCCESS
}
