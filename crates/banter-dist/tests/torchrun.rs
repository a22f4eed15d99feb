//! The collectives through torchrun itself: this test binary is started by `torchrun --no-python` as each
//! rank (the `worker` test, which does nothing outside torchrun), and the outer tests check what the ranks
//! wrote. Needs the venv's torchrun (`BANTER_PYTHON`'s bin folder); skipped without it.

use std::path::PathBuf;
use std::process::Command;

use banter_dist::{Backend, GradSync, Launch, ProcessGroup, Reduce};
use tch::{Kind, Tensor};

fn torchrun() -> Option<PathBuf> {
    let py = PathBuf::from(std::env::var("BANTER_PYTHON").ok()?);
    let t = py.parent()?.join("torchrun");
    t.exists().then_some(t)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs the `worker` test as `n` ranks; returns the exit status and stderr.
fn launch(n: usize, out: &std::path::Path, extra_env: &[(&str, &str)]) -> Option<(bool, String)> {
    let t = torchrun()?;
    let me = std::env::current_exe().unwrap();
    let mut c = Command::new(t);
    c.args(["--no-python", "--nproc-per-node", &n.to_string(), "--master-port", &free_port().to_string()])
        .arg(&me)
        .args(["--exact", "worker", "--nocapture", "--test-threads", "1"])
        .env("BANTER_DIST_TEST_OUT", out)
        .env("OMP_NUM_THREADS", "1");
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    Some((o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned()))
}

#[test]
fn worker() {
    let Ok(out) = std::env::var("BANTER_DIST_TEST_OUT") else { return };
    let launch = Launch::from_env().unwrap().expect("started by torchrun");
    let g = ProcessGroup::join(&launch, Backend::Gloo).unwrap();
    let r = g.rank() as f64;
    // all-reduce sum and max, broadcast, reduce-scatter, all-gather, bucketed gradients.
    let sums = g.sum_f64(&[r + 1.0, 10.0]).unwrap();
    let max = g.reduce_f64(&[r], Reduce::Max).unwrap();
    let b = Tensor::from_slice(&[r as f32; 3]);
    g.broadcast(&[&b], 1).unwrap();
    let input = Tensor::arange(2 * g.world() as i64, (Kind::Float, tch::Device::Cpu)) + r;
    let rs = Tensor::zeros([2], (Kind::Float, tch::Device::Cpu));
    g.reduce_scatter(&rs, &input).unwrap();
    let ag = Tensor::zeros([2 * g.world() as i64], (Kind::Float, tch::Device::Cpu));
    g.all_gather(&ag, &Tensor::from_slice(&[r as f32, 100.0 + r as f32])).unwrap();
    let w = Tensor::full([5, 4], r, (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    (&w * (r + 1.0)).sum(Kind::Float).backward();
    let unused = Tensor::zeros([3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let sync = GradSync::new(vec![w.shallow_clone(), unused.shallow_clone()]);
    sync.all_reduce(&g).unwrap();
    GradSync::broadcast_params(&[w.shallow_clone()], &g, 0).unwrap();
    g.barrier().unwrap();
    let line = format!(
        "{} {:?} {:?} {:?} {:?} {:?} {} {}",
        g.rank(),
        sums,
        max,
        Vec::<f32>::try_from(&b).unwrap(),
        Vec::<f32>::try_from(&rs).unwrap(),
        Vec::<f32>::try_from(&ag).unwrap(),
        w.grad().mean(Kind::Float).double_value(&[]),
        w.mean(Kind::Float).double_value(&[]),
    );
    std::fs::write(PathBuf::from(out).join(format!("rank{}", g.rank())), line).unwrap();
}

#[test]
fn two_ranks_agree_on_every_collective() {
    let dir = tempfile::tempdir().unwrap();
    let Some((ok, err)) = launch(2, dir.path(), &[]) else { return };
    assert!(ok, "{err}");
    let r0 = std::fs::read_to_string(dir.path().join("rank0")).unwrap();
    let r1 = std::fs::read_to_string(dir.path().join("rank1")).unwrap();
    // sums [1+2, 20]; max 1; broadcast from 1; reduce-scatter of [0,1,2,3]+r summed: [1,3] | [5,7];
    // all-gather [0,100,1,101]; gradient (1 + 2) = 3; weights broadcast from rank 0 = 0.
    assert_eq!(r0, "0 [3.0, 20.0] [1.0] [1.0, 1.0, 1.0] [1.0, 3.0] [0.0, 100.0, 1.0, 101.0] 3 0");
    assert_eq!(r1, "1 [3.0, 20.0] [1.0] [1.0, 1.0, 1.0] [5.0, 7.0] [0.0, 100.0, 1.0, 101.0] 3 0");
}
