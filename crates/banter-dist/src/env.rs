//! The launch as torchrun (or Slurm with the same variables) describes it to each process.

use crate::DistError;

/// The variables a rank reads, as torchrun sets them.
pub const VARS: [&str; 5] = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"];

/// One process's place in a distributed launch.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// This process's rank, `0..world`.
    pub rank: usize,
    /// Its rank on this node (the CUDA device it uses).
    pub local_rank: usize,
    /// Processes in the group.
    pub world: usize,
    /// The store's host.
    pub master_addr: String,
    /// The store's port.
    pub master_port: u16,
    /// torchrun's restart count (`TORCHELASTIC_RESTART_COUNT`), 0 for the first attempt.
    pub restart: u32,
    /// torchrun's agent hosts the store (`TORCHELASTIC_USE_AGENT_STORE`): every rank is a client.
    pub agent_store: bool,
    /// Seconds to wait for the store and for each collective (`BANTER_DIST_TIMEOUT`, default 1800).
    pub timeout_s: f64,
}

impl Launch {
    /// The launch from the environment: `None` when none of [`VARS`] is set (a single process).
    pub fn from_env() -> Result<Option<Launch>, DistError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`Launch::from_env`] over any lookup (tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Option<Launch>, DistError> {
        let set: Vec<&str> = VARS.iter().copied().filter(|k| get(k).is_some()).collect();
        if set.is_empty() {
            return Ok(None);
        }
        if let Some(missing) = VARS.iter().find(|k| get(k).is_none()) {
            return Err(DistError::Env(format!(
                "{} set but {missing} is not: start every rank through torchrun (torchrun --no-python \
                 --nproc-per-node N banter-train …), or set all of {}",
                set.join(", "),
                VARS.join(", ")
            )));
        }
        let num = |k: &str| -> Result<usize, DistError> {
            let v = get(k).unwrap_or_default();
            v.trim().parse::<usize>().map_err(|_| DistError::Env(format!("{k}={v:?} is not a whole number")))
        };
        let (rank, local_rank, world) = (num("RANK")?, num("LOCAL_RANK")?, num("WORLD_SIZE")?);
        if world == 0 || rank >= world {
            return Err(DistError::Env(format!("RANK={rank} is not below WORLD_SIZE={world}")));
        }
        let port = get("MASTER_PORT").unwrap_or_default();
        let master_port = port
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| DistError::Env(format!("MASTER_PORT={port:?} is not a port number")))?;
        let master_addr = get("MASTER_ADDR").unwrap_or_default();
        if master_addr.trim().is_empty() {
            return Err(DistError::Env("MASTER_ADDR is empty".into()));
        }
        let restart = get("TORCHELASTIC_RESTART_COUNT").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        let agent_store = get("TORCHELASTIC_USE_AGENT_STORE").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let timeout_s = match get("BANTER_DIST_TIMEOUT") {
            None => 1800.0,
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|t| *t > 0.0)
                .ok_or_else(|| DistError::Env(format!("BANTER_DIST_TIMEOUT={v:?} is not a number of seconds")))?,
        };
        Ok(Some(Launch {
            rank,
            local_rank,
            world,
            master_addr: master_addr.trim().to_string(),
            master_port,
            restart,
            agent_store,
            timeout_s,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn launch(vars: &[(&str, &str)]) -> Result<Option<Launch>, DistError> {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Launch::from_vars(|k| m.get(k).cloned())
    }

    const FULL: [(&str, &str); 5] = [
        ("RANK", "1"),
        ("LOCAL_RANK", "1"),
        ("WORLD_SIZE", "2"),
        ("MASTER_ADDR", "127.0.0.1"),
        ("MASTER_PORT", "29500"),
    ];

    #[test]
    fn none_set_is_a_single_process() {
        assert_eq!(launch(&[]).unwrap(), None);
    }

    #[test]
    fn torchrun_vars_are_read() {
        let mut v = FULL.to_vec();
        v.push(("TORCHELASTIC_RESTART_COUNT", "2"));
        v.push(("TORCHELASTIC_USE_AGENT_STORE", "True"));
        let l = launch(&v).unwrap().unwrap();
        assert_eq!((l.rank, l.local_rank, l.world, l.master_port, l.restart, l.agent_store), (1, 1, 2, 29500, 2, true));
        assert_eq!(l.timeout_s, 1800.0);
    }

    #[test]
    fn partial_or_bad_vars_are_one_line_errors() {
        let e = launch(&[("RANK", "0"), ("WORLD_SIZE", "2")]).unwrap_err().to_string();
        assert!(e.contains("LOCAL_RANK is not") && e.contains("torchrun") && !e.contains('\n'), "{e}");
        let mut v = FULL.to_vec();
        v[0] = ("RANK", "2");
        assert!(launch(&v).unwrap_err().to_string().contains("not below WORLD_SIZE"));
        let mut v = FULL.to_vec();
        v[4] = ("MASTER_PORT", "http");
        assert!(launch(&v).unwrap_err().to_string().contains("MASTER_PORT"));
        let mut v = FULL.to_vec();
        v.push(("BANTER_DIST_TIMEOUT", "-1"));
        assert!(launch(&v).unwrap_err().to_string().contains("BANTER_DIST_TIMEOUT"));
    }
}
