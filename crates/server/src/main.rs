//! The `switchboard` command line: `serve`, `demo`, `migrate`, `listen`, `trigger`, the admin
//! commands against a server (`people`, `company-keys`, `bots`, `integrations`,
//! `deliveries`, `replay`),
//! `completions`, `company …`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard_server::app::{self, shutdown_signal};
use switchboard_server::bootstrap::Bootstrap;
use switchboard_server::{Config, admin, demo, listen, manage, output, telemetry, trigger};

/// A self-hostable chat service that delivers every chat event to your bots
/// by signed webhook or AWS SQS, and lets the bots answer through an HTTP API
/// (compatible with Wildix x-bees chatbots).
///
/// Start with `switchboard demo`: a ready company with two people, an echo
/// bot and a channel, and the commands to try it.
#[derive(Parser)]
#[command(name = "switchboard", version, about, long_about)]
struct Cli {
    /// A TOML configuration file (default: ./switchboard.toml when present).
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Where settings come from, later ones winning.
const SETTINGS_HELP: &str = "\
Settings come from, later ones winning: built-in defaults; the TOML file
(--config FILE, else ./switchboard.toml when present); SWITCHBOARD_…
environment variables, `__` between levels (SWITCHBOARD_HTTP__LISTEN,
SWITCHBOARD_DATABASE__URL=postgres://…); then the flags above. Every key,
its variable and its default are in the README's Configuration table.";

#[derive(Subcommand)]
enum Command {
    /// Run the server on the configured database (the embedded SQLite file
    /// in the data directory unless database.url says otherwise).
    ///
    /// On an empty database it first creates a company and prints its
    /// company key once (bootstrap.company_key sets a fixed one).
    #[command(after_help = SETTINGS_HELP)]
    Serve {
        /// Address to listen on (http.listen).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Where the embedded database, secret key and files live (data_dir).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Run the server on a fresh SQLite file with a demo company, two people,
    /// an echo bot and a channel, and print credentials and commands to try.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: SocketAddr,
        /// Keep the demo in DIR (created when missing) instead of a temporary
        /// directory removed at exit. A later `demo --data-dir DIR` reuses it
        /// and prints the same credentials; remove DIR to start afresh.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Apply database migrations and exit (PostgreSQL needs this before
    /// `serve`; the embedded SQLite file migrates itself).
    #[command(after_help = SETTINGS_HELP)]
    Migrate {
        /// Where the embedded database lives (data_dir).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Forward a bot's live events to a local URL, signed as webhooks are:
    /// a bot on this machine gets its events with no public URL and no
    /// tunnel (over the pull transport of the server). Prints one line per
    /// event: time, type, channel, the local bot's status, milliseconds.
    Listen {
        /// Where each event is posted, such as http://localhost:3000/hook.
        #[arg(long, value_name = "URL")]
        forward_to: String,
        /// The switchboard server.
        #[arg(
            long,
            env = "SWITCHBOARD_SERVER",
            default_value = "http://127.0.0.1:8080",
            value_name = "URL"
        )]
        server: String,
        /// A bot key, or a company key with --bot.
        #[arg(
            long,
            env = "SWITCHBOARD_KEY",
            hide_env_values = true,
            value_name = "KEY"
        )]
        key: String,
        /// With a company key: the bot whose events to forward (it gets a
        /// pull integration for the session when it has none).
        #[arg(long, value_name = "ID")]
        bot: Option<String>,
        /// The `whsec_…` secret the events are signed with (default: a new
        /// one, printed).
        #[arg(long, value_name = "SECRET")]
        secret: Option<String>,
        /// How long the local bot has to answer, in seconds.
        #[arg(long, default_value_t = 10, value_name = "SECONDS")]
        timeout: u64,
    },
    /// Post one signed sample event of any type to a URL, as a webhook
    /// delivery comes (same headers, body and signatures), and print the
    /// answer: to try a bot's handler with no server. Fails unless it is 2xx.
    Trigger {
        /// The event type, such as chat:message:new (`--list` shows them).
        #[arg(required_unless_present = "list", value_name = "EVENT_TYPE")]
        event_type: Option<String>,
        /// Where to post it.
        #[arg(long, required_unless_present = "list", value_name = "URL")]
        to: Option<String>,
        /// The `whsec_…` secret to sign with (default: a new one, printed).
        #[arg(long, value_name = "SECRET")]
        secret: Option<String>,
        /// Print the event types and exit.
        #[arg(long)]
        list: bool,
    },
    /// People of a running server's company: list, add, make a user token
    /// (company key).
    People {
        #[command(flatten)]
        remote: manage::Remote,
        #[command(subcommand)]
        command: manage::PeopleCommand,
    },
    /// The company of a running server's company key, and its company keys:
    /// list, make one (company key).
    CompanyKeys {
        #[command(flatten)]
        remote: manage::Remote,
        #[command(subcommand)]
        command: manage::CompanyKeysCommand,
    },
    /// Bots of a running server: list, create, make a key (company key).
    Bots {
        #[command(flatten)]
        remote: manage::Remote,
        #[command(subcommand)]
        command: manage::BotsCommand,
    },
    /// Integrations of a running server's bots: list, create, pause,
    /// resume, test, rotate the secret (company key).
    Integrations {
        #[command(flatten)]
        remote: manage::Remote,
        #[command(subcommand)]
        command: manage::IntegrationsCommand,
    },
    /// An integration's delivery log, newest first, or followed as it grows
    /// (`--follow`); `--status dead` lists the dead letters (company key).
    Deliveries {
        #[command(flatten)]
        remote: manage::Remote,
        #[command(flatten)]
        asked: manage::Deliveries,
    },
    /// Deliver an integration's events again, with their ids: a time range
    /// (`--since`, `--until`) or `--event` ids (company key).
    Replay {
        #[command(flatten)]
        remote: manage::Remote,
        #[command(flatten)]
        asked: manage::Replay,
    },
    /// Print a completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Manage companies: list them, create one, give one a new company key.
    Company {
        /// Where the embedded database lives (data_dir); PostgreSQL is chosen
        /// by database.url as for `serve`.
        #[arg(long, global = true, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        #[command(subcommand)]
        command: CompanyCommand,
    },
}

#[derive(Subcommand)]
enum CompanyCommand {
    /// List every company: id, name, when it was made.
    List,
    /// Create a company and print its first company key (shown once).
    Create {
        /// The company's name.
        #[arg(long)]
        name: String,
    },
    /// Create a new company key for a company and print it (shown once):
    /// how an operator recovers a lost key. Keys already issued keep working
    /// until revoked (DELETE /v2/company/keys/{keyId} with the new key).
    NewKey {
        /// The company's id (`switchboard company list`); may be left out
        /// when the database holds one company.
        #[arg(long, value_name = "ID")]
        company: Option<String>,
        /// A name for the key, shown when keys are listed.
        #[arg(long, default_value = "recovery key")]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => return output::fail(&anyhow::Error::from(err)),
    };
    let result = runtime.block_on(run(cli));
    // Tasks still running (an echo bot, idle connections) end with the runtime.
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => output::fail(&err),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    telemetry::init(&config.log)?;
    match cli.command {
        Command::Serve { listen, data_dir } => {
            if let Some(listen) = listen {
                config.http.listen = listen;
            }
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
            serve(config).await
        }
        Command::Demo { listen, data_dir } => demo::run(config, listen, data_dir).await,
        Command::Migrate { data_dir } => {
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
            let done = admin::migrate(&config).await?;
            output::say(&done);
            Ok(())
        }
        Command::Listen {
            forward_to,
            server,
            key,
            bot,
            secret,
            timeout,
        } => {
            listen::run(listen::Listen {
                server,
                key,
                bot,
                forward_to,
                secret,
                timeout: std::time::Duration::from_secs(timeout.max(1)),
            })
            .await
        }
        Command::Trigger {
            event_type,
            to,
            secret,
            list,
        } => match (list, event_type, to) {
            (false, Some(event_type), Some(to)) => {
                trigger::run(&event_type, &to, secret.as_deref()).await
            }
            _ => {
                output::say(&trigger::list());
                Ok(())
            }
        },
        Command::People { remote, command } => manage::people(&remote, command).await,
        Command::CompanyKeys { remote, command } => manage::company_keys(&remote, command).await,
        Command::Bots { remote, command } => manage::bots(&remote, command).await,
        Command::Integrations { remote, command } => manage::integrations(&remote, command).await,
        Command::Deliveries { remote, asked } => manage::deliveries(&remote, asked).await,
        Command::Replay { remote, asked } => manage::replay(&remote, asked).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "switchboard",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Company { data_dir, command } => {
            if let Some(dir) = data_dir {
                config.data_dir = dir;
            }
            let said = match command {
                CompanyCommand::List => admin::list_companies(&config).await?,
                CompanyCommand::Create { name } => admin::create_company(&config, &name).await?,
                CompanyCommand::NewKey { company, name } => {
                    admin::new_company_key(&config, company.as_deref(), &name).await?
                }
            };
            output::say(&said);
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = app::start(&config).await?;
    let stop = shutdown_signal();
    if let Bootstrap::CreatedWithGeneratedKey(company, key) = &server.bootstrap {
        output::say(&format!(
            "Created the first company {} ({}).\nIts company key is shown this once, keep it:\n\n  {}\n\n\
             (Lost it? `switchboard company new-key` makes another.)\n",
            company.id,
            company.name,
            key.reveal()
        ));
    }
    output::say(&format!(
        "switchboard is listening on http://{}",
        server.addr
    ));
    server.run_until(stop).await
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
