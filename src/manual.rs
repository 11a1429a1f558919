//! The man pages and shell completions, generated from the CLI definition
//! itself (`clap_mangen`, `clap_complete`) so they cannot drift from what
//! the binary accepts. `scripts/package.sh` runs the hidden
//! `mailcanary generate-manual DIR` and ships what it writes.

use std::io;
use std::path::{Path, PathBuf};

use clap::Command;
use clap_complete::Shell;

/// Write `DIR/man/*.1` (one page for the command, one per visible
/// subcommand) and `DIR/completions/{mailcanary.bash, _mailcanary,
/// mailcanary.fish}`; returns the files written.
pub fn write(cmd: Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let man = dir.join("man");
    let completions = dir.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let bin = cmd.get_name().to_owned();

    clap_mangen::generate_to(cmd.clone(), &man)?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(&man)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;

    // clap_complete offers hidden subcommands too (clap_mangen skips them):
    // complete a copy without them.
    let mut visible = without_hidden(&cmd);
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        written.push(clap_complete::generate_to(
            shell,
            &mut visible,
            &bin,
            &completions,
        )?);
    }
    written.sort();
    Ok(written)
}

/// A copy of `cmd` without hidden subcommands or arguments, keeping what a
/// completion needs: names, arguments, about lines, version.
fn without_hidden(cmd: &Command) -> Command {
    let mut out = Command::new(cmd.get_name().to_owned())
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .groups(cmd.get_groups().cloned())
        .subcommands(
            cmd.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(without_hidden),
        )
        .subcommand_required(cmd.is_subcommand_required_set());
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(version) = cmd.get_version() {
        out = out.version(version.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Arg;

    fn cli() -> Command {
        Command::new("tool")
            .version("1.2.3")
            .about("A tool")
            .arg(Arg::new("verbose").long("verbose").global(true).num_args(0))
            .subcommand(
                Command::new("run")
                    .about("Run it")
                    .arg(Arg::new("config").long("config")),
            )
            .subcommand(Command::new("secret-helper").hide(true))
            .subcommand_required(true)
    }

    #[test]
    fn pages_and_completions_cover_visible_commands_only() {
        let dir = tempfile::tempdir().unwrap();
        let files = write(cli(), dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "completions/_tool",
                "completions/tool.bash",
                "completions/tool.fish",
                "man/tool-run.1",
                "man/tool.1",
            ]
        );
        let page = std::fs::read_to_string(dir.path().join("man/tool.1")).unwrap();
        assert!(page.contains(".TH tool 1"), "{page}");
        assert!(page.contains("tool\\-run(1)"), "{page}");
        assert!(!page.contains("secret"), "{page}");
        for f in ["tool.bash", "_tool", "tool.fish"] {
            let text = std::fs::read_to_string(dir.path().join("completions").join(f)).unwrap();
            // fish spells long options `-l config`.
            assert!(text.contains("config"), "{f}: {text}");
            assert!(text.contains("verbose"), "{f}: {text}");
            assert!(!text.contains("secret-helper"), "{f}: {text}");
        }
    }
}
