//! `revwallet keys create|list|revoke`: API keys managed on the database directly (no server needed).

use clap::{Args, Subcommand};

use crate::auth::new_key;
use crate::config::DatabaseArgs;
use crate::domain::{KeySecret, Role, rfc3339};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret (on stdout, this once; only a hash is stored).
    Create {
        /// `read` (GET routes), `write` (also open wallets and move money) or `admin` (everything).
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Bind the key to one owner: it sees and acts on that owner's wallets only.
        #[arg(long)]
        owner: Option<String>,
        /// A name to recognise the key by in listings.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List keys (id, role, owner, name, created, revoked); never their secrets.
    List,
    /// Revoke a key by id: every server stops accepting it within seconds.
    Revoke { id: String },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| "expected read, write or admin".to_owned())
}

pub async fn keys(args: KeysArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.database.url(), &args.database.store_options())?;
    store.migrate().await?;
    match args.command {
        KeysCommand::Create { role, owner, name } => {
            let secret = KeySecret::generate();
            let key =
                new_key(&secret, role, owner.as_deref(), &name).map_err(anyhow::Error::msg)?;
            if store.insert_api_key(&key).await?.is_none() {
                anyhow::bail!("a key with this id exists already; run the command again");
            }
            eprintln!("created {role} key {}; its secret, shown only now:", key.id);
            println!("{}", secret.reveal());
        }
        KeysCommand::List => {
            println!("id\trole\towner\tname\tcreated_at\trevoked_at");
            for key in store.list_api_keys().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    key.id,
                    key.role,
                    key.owner.as_deref().unwrap_or("-"),
                    key.name,
                    rfc3339(key.created_at),
                    key.revoked_at.map_or_else(|| "-".to_owned(), rfc3339)
                );
            }
        }
        KeysCommand::Revoke { id } => {
            store.revoke_api_key(&id).await?;
            eprintln!("revoked key {id}");
        }
    }
    store.close().await;
    Ok(())
}
