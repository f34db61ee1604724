//! The `switchboard` command line: `serve`, `demo`, `migrate`, `company create`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard_domain::credentials::{self, CredentialKind};
use switchboard_server::app::{self, shutdown_signal};
use switchboard_server::bootstrap::{self, Bootstrap};
use switchboard_server::{Config, demo, telemetry};

/// A self-hostable chat service that delivers every chat event to your bots.
#[derive(Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    /// A TOML configuration file (default: ./switchboard.toml when present).
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server with the configured database.
    Serve,
    /// Run the server on a fresh SQLite file with a demo company, people, a bot and a channel.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Keep the demo's data in this directory instead of a temporary one.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage companies.
    Company {
        #[command(subcommand)]
        command: CompanyCommand,
    },
}

#[derive(Subcommand)]
enum CompanyCommand {
    /// Create a company and print its first company key (shown once).
    Create {
        /// The company's name.
        #[arg(long)]
        name: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    telemetry::init(&config.log)?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Demo { listen, data_dir } => {
            let temporary = match data_dir {
                Some(dir) => {
                    config.data_dir = dir;
                    None
                }
                None => {
                    let dir = tempfile::Builder::new()
                        .prefix("switchboard-demo-")
                        .tempdir()?;
                    config.data_dir = dir.path().to_owned();
                    Some(dir)
                }
            };
            config.http.listen = listen;
            config.database.url = None;
            config.bootstrap.company_key = None;
            config.bootstrap.company_name = "Demo Company".to_owned();
            // The demo's echo bot listens on loopback.
            config.delivery.allow_targets = "127.0.0.0/8,::1/128".to_owned();
            let result = run_demo(config).await;
            drop(temporary);
            result
        }
        Command::Migrate => {
            let database = app::open_database(&config, app::Purpose::Migrate).await?;
            database.close().await;
            match database {
                app::Database::Postgres(_) => {
                    println!("migrations applied to the PostgreSQL database")
                }
                app::Database::Sqlite(_) => {
                    println!("migrations applied to {}", config.sqlite_path().display())
                }
            }
            Ok(())
        }
        Command::Company {
            command: CompanyCommand::Create { name },
        } => {
            let database = app::open_database(&config, app::Purpose::Use).await?;
            let key = credentials::generate(CredentialKind::Company);
            let (company, _) =
                bootstrap::create_company(database.store().as_ref(), name.trim(), &key)
                    .await
                    .context("could not create the company")?;
            database.close().await;
            println!("company {} ({})", company.id, company.name);
            println!("company key (shown once, keep it): {}", key.reveal());
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = app::start(&config).await?;
    if let Bootstrap::CreatedWithGeneratedKey(company, key) = &server.bootstrap {
        println!(
            "Created the first company {} ({}).\nIts company key is shown this once, keep it:\n\n  {}\n",
            company.id,
            company.name,
            key.reveal()
        );
    }
    println!("switchboard is listening on http://{}", server.addr);
    server.run_until(shutdown_signal()).await
}

async fn run_demo(config: Config) -> anyhow::Result<()> {
    let server = app::start(&config).await?;
    let Bootstrap::CreatedWithGeneratedKey(company, key) = &server.bootstrap else {
        anyhow::bail!("the demo needs an empty data directory");
    };
    let base = format!("http://{}", server.addr);
    let data = demo::prepare(
        server.store.as_ref(),
        &base,
        &company.id,
        key.reveal().to_owned(),
    )
    .await?;
    println!("{}", data.instructions(&base));
    server.run_until(shutdown_signal()).await
}
