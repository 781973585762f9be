//! Destructive commands take the name of what they destroy twice
//! (`--confirm NAME`), so that a slip of the shell history cannot.

use anyhow::bail;

/// Refuses unless `confirm` repeats `name`.
pub fn require(kind: &str, name: &str, confirm: Option<&str>) -> anyhow::Result<()> {
    match confirm {
        Some(c) if c == name => Ok(()),
        Some(c) => bail!("--confirm `{c}` does not match {kind} `{name}`; nothing was changed"),
        None => bail!("this cannot be undone: pass --confirm {name} to remove {kind} `{name}`"),
    }
}
