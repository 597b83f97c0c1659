//! The configuration reference (`docs/configuration.md`), rendered from the
//! clap definitions themselves so it cannot drift: every flag of every
//! command with its environment variable, default and help text. The test
//! `server/tests/config_reference.rs` fails when the committed file differs
//! from what this renders (and rewrites it with `UPDATE_CONFIG_REFERENCE=1`).

use std::fmt::Write;

use clap::{Arg, ArgAction, Command, CommandFactory};

use crate::cli::Cli;

const PREAMBLE: &str = "\
# Configuration reference

Every flag of every `sagascope` command, with the environment variable that
sets it (a flag on the command line wins over the variable), its default and
what it does. Generated from the code by `server/src/config_reference.rs`;
`UPDATE_CONFIG_REFERENCE=1 cargo test -p sagascope --test config_reference`
rewrites this file, and the same test fails in CI when it is out of date.
`.env.example` is a commented starting point for `serve`.

Secrets (`DATABASE_URL` passwords, `SAGASCOPE_CSRF_SECRET`,
`SAGASCOPE_OTLP_TOKEN`, demo passwords) are never logged. Durations are
written like `30s`, `5m`, `12h`, `30d`.

sagascope's own telemetry is configured by the standard OpenTelemetry
variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, …), listed
in [operations.md](operations.md#own-telemetry), not by flags.
";

/// The whole reference as Markdown.
pub fn render() -> String {
    let mut cli = Cli::command();
    cli.build();
    let mut out = String::from(PREAMBLE);
    let globals: Vec<&Arg> = visible_args(&cli).filter(|a| a.is_global_set()).collect();
    if !globals.is_empty() {
        out.push_str("\n## Options of every command\n\n");
        table(&mut out, &globals);
    }
    for sub in documented_subcommands(&cli) {
        command(&mut out, sub, &["sagascope"], 2);
    }
    out
}

fn command(out: &mut String, cmd: &Command, parents: &[&str], level: usize) {
    let mut path: Vec<&str> = parents.to_vec();
    path.push(cmd.get_name());
    let _ = write!(out, "\n{} `{}`\n\n", "#".repeat(level), path.join(" "));
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        let _ = writeln!(out, "{}\n", one_paragraph(&about.to_string()));
    }
    let args: Vec<&Arg> = visible_args(cmd)
        .filter(|a| !a.is_global_set() && !a.is_positional())
        .collect();
    let positionals: Vec<&Arg> = visible_args(cmd).filter(|a| a.is_positional()).collect();
    for arg in &positionals {
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "- argument `{}`: {}",
            arg.get_id().as_str().to_uppercase(),
            one_paragraph(&help)
        );
    }
    if !positionals.is_empty() {
        out.push('\n');
    }
    if args.is_empty() && positionals.is_empty() && !cmd.has_subcommands() {
        out.push_str("No options.\n");
    }
    if !args.is_empty() {
        table(out, &args);
    }
    for sub in documented_subcommands(cmd) {
        command(out, sub, &path, (level + 1).min(4));
    }
}

/// Without clap's generated `help` sub-commands.
fn documented_subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
}

fn visible_args(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments().filter(|a| {
        !a.is_hide_set() && !matches!(a.get_action(), ArgAction::Help | ArgAction::Version)
    })
}

fn table(out: &mut String, args: &[&Arg]) {
    out.push_str("| flag | environment | default | description |\n|---|---|---|---|\n");
    for arg in args {
        let flag = match arg.get_long() {
            Some(long) => format!("`--{long}`"),
            None => format!("`{}`", arg.get_id()),
        };
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let default = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().to_string())
            .collect::<Vec<_>>()
            .join(",");
        let default = if default.is_empty() {
            String::new()
        } else {
            format!("`{default}`")
        };
        let mut help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| one_paragraph(&h.to_string()))
            .unwrap_or_default();
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| format!("`{}`", v.get_name()))
            .collect();
        if !values.is_empty() && matches!(arg.get_action(), ArgAction::Set | ArgAction::Append) {
            let _ = write!(help, " One of {}.", values.join(", "));
        }
        if matches!(arg.get_action(), ArgAction::Append) {
            help.push_str(" Repeatable.");
        }
        // A `|` ends a table cell even inside backticks.
        let _ = writeln!(
            out,
            "| {flag} | {env} | {} | {} |",
            default.replace('|', "\\|"),
            help.replace('|', "\\|")
        );
    }
}

/// Help texts are wrapped doc comments: one line per table cell, ending
/// as a sentence (clap drops the last full stop of a one-line help).
fn one_paragraph(text: &str) -> String {
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if !line.is_empty() && !line.ends_with(['.', '!', '?', ':', ')']) {
        line.push('.');
    }
    line
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_every_command_and_the_database_url() {
        let text = super::render();
        for needle in ["`sagascope serve`", "`sagascope demo`", "`DATABASE_URL`"] {
            assert!(text.contains(needle), "missing {needle}");
        }
    }
}
