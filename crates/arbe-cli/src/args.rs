//! The command line, as clap types only: what each command takes, nothing about what it does.

use std::net::IpAddr;

use clap::{Args, Parser, Subcommand};

/// arbe runs AI coding agents in sandboxes: secrets live on the house; environments bind the
/// secrets they need and target one sandbox; a message in a thread dispatches its agents.
#[derive(Debug, Parser)]
#[command(name = "arbe", version, about, propagate_version = true, max_term_width = 100)]
pub(crate) struct Cli {
    /// Print machine-readable JSON on stdout instead of tables and text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// The environment to use, by name or id (overrides `arbe env use`).
    #[arg(long, global = true, value_name = "NAME|ID")]
    pub(crate) env: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The command groups.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the embedded server in the foreground on ~/.arbe/ (first start creates house `default`).
    Up(UpArgs),
    /// See an agent work in a sandbox: a temporary server, seed 000's workflow, the live tail.
    Quickstart,
    /// Houses (tenants) you are a member of.
    #[command(subcommand)]
    House(HouseCommand),
    /// The active house's secrets (values only ever from stdin).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Environments: a sandbox, a repo policy and the secrets to inject.
    #[command(subcommand)]
    Env(EnvCommand),
    /// Sandboxes: the machines agents' commands run on.
    Sandbox(SandboxArgs),
    /// Threads and their entries; a message dispatches the thread's agents.
    #[command(subcommand)]
    Thread(ThreadCommand),
    /// The house's agents (name, model, system prompt).
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Your API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Save a server URL and an API key (read from stdin) to ~/.arbe/credentials.
    Login(LoginArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `arbe up`.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Port to listen on (ARBE_PORT; default 8080).
    #[arg(long)]
    pub(crate) port: Option<u16>,
    /// Address to listen on (ARBE_BIND; default 127.0.0.1).
    #[arg(long)]
    pub(crate) bind: Option<IpAddr>,
    /// Log every request and mirror entry streams to stderr.
    #[arg(long)]
    pub(crate) verbose: bool,
}

/// `arbe login`.
#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The server (default: ARBE_URL, else http://127.0.0.1:8080).
    #[arg(long)]
    pub(crate) url: Option<String>,
}

/// `arbe house …`.
#[derive(Debug, Subcommand)]
pub(crate) enum HouseCommand {
    /// The houses you are a member of.
    #[command(visible_alias = "ls", alias = "l")]
    List,
    /// Make a house the active one.
    Select {
        /// Its name or id.
        house: String,
    },
    /// Create a house; you become its owner.
    Create {
        /// Its name.
        name: String,
    },
}

/// `arbe secret …`.
#[derive(Debug, Subcommand)]
pub(crate) enum SecretCommand {
    /// The house's secrets (names and metadata, never values).
    #[command(visible_alias = "ls", alias = "l")]
    List,
    /// One secret's metadata, timestamps and audience.
    View {
        /// Its name.
        name: String,
    },
    /// Create or rotate a secret; the value is read from stdin.
    Set {
        /// Its name (`[A-Z_][A-Z0-9_]*`).
        name: String,
        /// `environment` (injected into sandboxes, the default) or `capability` (the control plane's own).
        #[arg(long)]
        audience: Option<String>,
        /// Usable by every agent of the house, not only your environments'.
        #[arg(long)]
        shared: bool,
        /// Refused: a value on the command line would stay in the shell's history.
        #[arg(hide = true)]
        value: Option<String>,
    },
    /// Delete a secret.
    #[command(visible_alias = "rm", alias = "del")]
    Delete {
        /// Its name.
        name: String,
    },
}

/// `arbe env …`.
#[derive(Debug, Subcommand)]
pub(crate) enum EnvCommand {
    /// The house's environments.
    #[command(visible_alias = "ls", alias = "l")]
    List,
    /// One environment with its secret bindings.
    View {
        /// Its name (any case) or id; default: the active one.
        env: Option<String>,
    },
    /// Create an environment; without --sandbox it provisions one on its runtime.
    Create {
        /// Its name.
        name: String,
        /// An existing sandbox, by id or name.
        #[arg(long)]
        sandbox: Option<String>,
        /// The runtime to provision on (default: the server's).
        #[arg(long)]
        runtime: Option<String>,
        /// The default repository; it joins the allowed repositories.
        #[arg(long)]
        repo: Option<String>,
        /// A secret a dispatch needs (repeatable).
        #[arg(long = "secret", value_name = "NAME")]
        secrets: Vec<String>,
        /// A secret a dispatch warns without (repeatable).
        #[arg(long = "optional-secret", value_name = "NAME")]
        optional_secrets: Vec<String>,
    },
    /// Bind a secret by name; the same --optional again changes nothing, a different one flips it.
    BindSecret {
        /// The environment.
        env: String,
        /// The secret's name.
        name: String,
        /// Warn instead of fail when it is missing at dispatch.
        #[arg(long)]
        optional: bool,
    },
    /// Remove a binding.
    UnbindSecret {
        /// The environment.
        env: String,
        /// The secret's name.
        name: String,
    },
    /// Make an environment the active one.
    Use {
        /// Its name or id.
        env: String,
    },
    /// Would a dispatch start? Every check; exits non-zero on a blocker.
    Diagnose {
        /// Its name or id; default: the active one.
        env: Option<String>,
        /// The model to check for (default: the house's default).
        #[arg(long)]
        model: Option<String>,
    },
    /// Delete an environment (owners only).
    #[command(visible_alias = "rm", alias = "del")]
    Delete {
        /// Its name or id.
        env: String,
    },
}

/// `arbe sandbox [ID] …`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct SandboxArgs {
    /// The verb; without one, `arbe sandbox <ID>` views the sandbox.
    #[command(subcommand)]
    pub(crate) command: Option<SandboxCommand>,
    /// A sandbox to view, by id or name.
    pub(crate) sandbox: Option<String>,
    /// Only sandboxes of this runtime.
    #[arg(long, global = true)]
    pub(crate) runtime: Option<String>,
}

/// `arbe sandbox …`.
#[derive(Debug, Subcommand)]
pub(crate) enum SandboxCommand {
    /// The house's sandboxes (of every runtime, or of --runtime).
    #[command(visible_alias = "ls", alias = "l")]
    List,
    /// One sandbox in detail.
    View {
        /// Its id or name.
        sandbox: String,
    },
    /// Start (or resume) a sandbox.
    Start {
        /// Its id or name.
        sandbox: String,
    },
    /// Stop a sandbox; its files stay.
    Stop {
        /// Its id or name.
        sandbox: String,
    },
    /// Destroy a sandbox and its files.
    #[command(alias = "rm", alias = "del")]
    Destroy {
        /// Its id or name.
        sandbox: String,
    },
    /// Its state and, when started, a round trip.
    Ping {
        /// Its id or name.
        sandbox: String,
    },
    /// What its runtime finds about it.
    Diagnose {
        /// Its id or name.
        sandbox: String,
    },
    /// The variables its commands get (names only).
    Env {
        /// Its id or name.
        sandbox: String,
    },
}

/// `arbe thread …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ThreadCommand {
    /// Create a thread under a parent (a channel name or a thread id); prints only its id.
    Create {
        /// A channel name or another thread's id.
        parent: String,
        /// Pin every agent of the thread to this model.
        #[arg(long)]
        model: Option<String>,
        /// An agent that replies, by name or id (repeatable; default: the house's default agent).
        #[arg(long = "agent", value_name = "NAME|ID")]
        agents: Vec<String>,
    },
    /// The house's threads, newest first.
    #[command(visible_alias = "ls", alias = "l")]
    List {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One thread.
    View {
        /// Its id.
        thread: String,
    },
    /// End the thread's queued dispatches and stop its running one.
    Cancel {
        /// Its id.
        thread: String,
    },
    /// A thread's entries.
    #[command(subcommand)]
    Entries(EntriesCommand),
}

/// `arbe thread entries …`.
#[derive(Debug, Subcommand)]
pub(crate) enum EntriesCommand {
    /// Post a message (`-` reads it from stdin); it dispatches the thread's agents.
    Create {
        /// The thread's id.
        thread: String,
        /// The message.
        text: String,
    },
    /// Print the entries and follow the latest dispatch to its end (exit code: its status).
    Read {
        /// The thread's id.
        thread: String,
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Print what is there and exit.
        #[arg(long)]
        no_follow: bool,
    },
}

/// `arbe agent …`.
#[derive(Debug, Subcommand)]
pub(crate) enum AgentCommand {
    /// The house's agents.
    #[command(visible_alias = "ls", alias = "l")]
    List,
    /// One agent.
    View {
        /// Its name or id.
        agent: String,
    },
    /// Create an agent.
    Create {
        /// Its name.
        name: String,
        /// Its model (`provider/model`; default openrouter/anthropic/claude-haiku-4.5).
        #[arg(long)]
        model: Option<String>,
        /// Its system prompt.
        #[arg(long)]
        system_prompt: Option<String>,
        /// Make it the house's default agent.
        #[arg(long)]
        default: bool,
    },
    /// Delete an agent.
    #[command(visible_alias = "rm", alias = "del")]
    Delete {
        /// Its name or id.
        agent: String,
    },
}

/// `arbe key …`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Your API keys (never the keys themselves).
    #[command(visible_alias = "ls", alias = "l")]
    List,
    /// A new API key, printed this once.
    Create {
        /// What it is for.
        label: String,
    },
    /// Revoke one of your keys.
    #[command(alias = "rm", alias = "del")]
    Revoke {
        /// Its id.
        id: String,
    },
}
