//! `sagascope user add|list|disable|enable|set-password` and
//! `sagascope token create`: account administration straight on the
//! database (no server needed). Every change is audited with the actor
//! `cli`.

use std::io::BufRead;

use anyhow::{bail, Context};
use chrono::{TimeDelta, Utc};
use clap::{Args, Subcommand};
use sagascope_auth::{
    check_password_policy_for, generate_password, hash_password, validate_username, NewApiToken,
    NewUser, Role,
};
use sagascope_model::audit_result;
use sagascope_store::{NewAuditEntry, Store};
use serde_json::json;

use super::parse_ttl;
use crate::cli::StoreArgs;

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a local account. Without --password-stdin a password is
    /// generated and printed once.
    Add {
        name: String,
        /// viewer (reads), operator (also retries and discards) or admin
        /// (also users, tokens and reprojection).
        #[arg(long, value_parser = clap::value_parser!(Role))]
        role: Role,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the accounts.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable an account: its sessions end, its API tokens stop working.
    Disable {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Enable a disabled account again.
    Enable {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a new password (generated unless --password-stdin); ends the
    /// account's sessions.
    SetPassword {
        name: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token (`Authorization: Bearer …`) for a user; it is
    /// printed once, only its hash is stored.
    Create {
        /// The user the token acts for.
        #[arg(long)]
        user: String,
        /// What the token is for, e.g. ci-retry-bot.
        #[arg(long)]
        label: String,
        /// At most the user's role; default the user's role.
        #[arg(long, value_parser = clap::value_parser!(Role))]
        role: Option<Role>,
        /// Lifetime such as 90d; default: until revoked.
        #[arg(long, value_parser = parse_ttl)]
        expires_in: Option<std::time::Duration>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

async fn open(store: &StoreArgs) -> anyhow::Result<Store> {
    let url = &store.database_url;
    let store = Store::connect(url).await.with_context(|| {
        format!(
            "cannot open the store at {}",
            sagascope_store::redact_url(url)
        )
    })?;
    store.migrate().await.context("migrations failed")?;
    Ok(store)
}

async fn cli_audit(
    store: &Store,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    store
        .append_audit(&NewAuditEntry {
            at: Utc::now(),
            actor: "cli".into(),
            actor_role: Some(Role::Admin.as_str().into()),
            auth_method: "cli".into(),
            action: action.into(),
            target: Some(target.into()),
            reason: None,
            detail,
            result: audit_result::OK.into(),
            client_ip: None,
        })
        .await
        .context("could not write the audit log")?;
    Ok(())
}

/// The password from stdin (first line), or a generated one (printed).
fn new_password(name: &str, from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    check_password_policy_for(name, &password)?;
    Ok((password, false))
}

fn hash(password: String) -> anyhow::Result<String> {
    Ok(hash_password(&password)?)
}

pub async fn user(args: UserArgs) -> anyhow::Result<()> {
    match args.command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
            store,
        } => {
            validate_username(&name)?;
            let (password, generated) = new_password(&name, password_stdin)?;
            let store = open(&store).await?;
            let user = NewUser {
                name: name.clone(),
                role,
                password_hash: hash(password.clone())?,
            };
            if !store.add_user(&user, Utc::now()).await? {
                bail!("user `{name}` exists already (see `sagascope user set-password`)");
            }
            cli_audit(&store, "user.add", &name, json!({ "role": role.as_str() })).await?;
            println!("added user {name} with role {role}");
            if generated {
                println!("password: {password}");
            }
        }
        UserCommand::List { store } => {
            let store = open(&store).await?;
            let users = store.list_users().await?;
            if users.is_empty() {
                println!("no users yet: sagascope user add NAME --role viewer|operator|admin");
            }
            for user in users {
                println!(
                    "{:<32} {:<9} created {}{}",
                    user.name,
                    user.role.as_str(),
                    user.created_at.format("%Y-%m-%d %H:%M UTC"),
                    if user.disabled { "  DISABLED" } else { "" }
                );
            }
        }
        UserCommand::Disable { name, store } => set_disabled(&name, &store, true).await?,
        UserCommand::Enable { name, store } => set_disabled(&name, &store, false).await?,
        UserCommand::SetPassword {
            name,
            password_stdin,
            store,
        } => {
            let (password, generated) = new_password(&name, password_stdin)?;
            let store = open(&store).await?;
            if !store
                .update_user(&name, None, Some(&hash(password.clone())?))
                .await?
            {
                bail!("no user `{name}`");
            }
            cli_audit(&store, "user.set_password", &name, json!({})).await?;
            println!("new password set for {name}; their sessions have ended");
            if generated {
                println!("password: {password}");
            }
        }
    }
    Ok(())
}

async fn set_disabled(name: &str, store: &StoreArgs, disabled: bool) -> anyhow::Result<()> {
    let store = open(store).await?;
    if !store.set_user_disabled(name, disabled).await? {
        bail!("no user `{name}`");
    }
    let action = if disabled {
        "user.disable"
    } else {
        "user.enable"
    };
    cli_audit(&store, action, name, json!({})).await?;
    if disabled {
        println!("disabled {name}: their sessions have ended and their API tokens stop working");
    } else {
        println!("enabled {name}");
    }
    Ok(())
}

pub async fn token(args: TokenArgs) -> anyhow::Result<()> {
    match args.command {
        TokenCommand::Create {
            user,
            label,
            role,
            expires_in,
            store,
        } => {
            let label = super::tokens::validate_label(&label).map_err(anyhow::Error::msg)?;
            let store = open(&store).await?;
            let Some(account) = store.find_user(&user).await?.filter(|u| !u.disabled) else {
                bail!("no active user `{user}`");
            };
            let role = super::tokens::token_role(role.map(Role::as_str), account.role)
                .map_err(anyhow::Error::msg)?;
            let now = Utc::now();
            let expires_at = expires_in
                .map(TimeDelta::from_std)
                .transpose()
                .context("--expires-in is too long")?
                .map(|ttl| now + ttl);
            let (plaintext, token) = NewApiToken::issue(&label, &user, role, now, expires_at);
            cli_audit(
                &store,
                "token.create",
                &user,
                json!({ "label": label, "role": role.as_str(), "expires_at": expires_at }),
            )
            .await?;
            store.create_api_token(&token).await?;
            println!("API token for {user} ({role}), label {label:?}; shown only this once:");
            println!("{plaintext}");
        }
    }
    Ok(())
}

/// The demo's accounts: `operator` (operator) and `viewer` (viewer), with
/// the given or generated passwords, returned for printing.
pub async fn create_demo_users(
    store: &Store,
    operator_password: Option<&str>,
    viewer_password: Option<&str>,
) -> anyhow::Result<Vec<(String, Role, String)>> {
    let mut created = Vec::new();
    for (name, role, given) in [
        ("operator", Role::Operator, operator_password),
        ("viewer", Role::Viewer, viewer_password),
    ] {
        let password = match given {
            Some(given) => {
                check_password_policy_for(name, given)
                    .with_context(|| format!("the demo {name}'s password"))?;
                given.to_string()
            }
            None => generate_password(),
        };
        let user = NewUser {
            name: name.to_string(),
            role,
            password_hash: hash(password.clone())?,
        };
        if store.add_user(&user, Utc::now()).await? {
            cli_audit(
                store,
                "user.add",
                name,
                json!({ "role": role.as_str(), "demo": true }),
            )
            .await?;
            created.push((name.to_string(), role, password));
        }
    }
    Ok(created)
}
