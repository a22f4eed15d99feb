//! Direct preference optimisation: the sequence log-probabilities of replies and the DPO losses over them,
//! as TRL's `DPOTrainer` computes them (`trl/trainer/dpo_trainer.py`, 1.16):
//!
//! - `Δ = (log π(chosen) − log π_ref(chosen)) − (log π(rejected) − log π_ref(rejected))`, log-probs summed over
//!   the reply's tokens;
//! - `sigmoid`: `−log σ(βΔ)`; with label smoothing ε, conservative DPO: `−(1−ε) log σ(βΔ) − ε log σ(−βΔ)`;
//! - `ipo`: `(Δ' − 1/(2β))²` with each log-ratio averaged over its reply's tokens (TRL's normalisation);
//! - `hinge`: `max(0, 1 − βΔ)`;
//! - rewards `β (log π − log π_ref)` per reply; accuracy: the chosen reward above the rejected one.

use tch::{Kind, Tensor};

/// The DPO loss variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpoLoss {
    /// The DPO paper's logistic loss (with optional label smoothing: conservative DPO).
    Sigmoid,
    /// IPO: squared distance of the per-token log-ratio margin from `1/(2β)`.
    Ipo,
    /// SLiC's hinge.
    Hinge,
}

/// DPO's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpoSettings {
    /// β: how far from the reference the policy may move (TRL's default 0.1).
    pub beta: f64,
    /// The loss.
    pub loss: DpoLoss,
    /// ε: the share of preference labels assumed flipped (sigmoid only).
    pub label_smoothing: f64,
}

impl Default for DpoSettings {
    fn default() -> Self {
        DpoSettings { beta: 0.1, loss: DpoLoss::Sigmoid, label_smoothing: 0.0 }
    }
}

impl DpoSettings {
    /// What is wrong with the settings, if anything (`--beta`, `--label-smoothing`).
    pub fn check(&self) -> Result<(), String> {
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return Err(format!("--beta {} must be a positive number", self.beta));
        }
        if !(0.0..0.5).contains(&self.label_smoothing) {
            return Err(format!("--label-smoothing {} must be in [0, 0.5)", self.label_smoothing));
        }
        if self.label_smoothing > 0.0 && self.loss != DpoLoss::Sigmoid {
            return Err("--label-smoothing applies to the sigmoid loss only".into());
        }
        Ok(())
    }
}

/// Log-probabilities of the labelled tokens, per row: `(sum [B], count [B])`. `logits` `[B, T, V]` predict
/// the next token; `labels` `[B, T]` hold the token at each position, −100 where it is not scored (the prompt,
/// padding). Computed in fp32.
pub fn sequence_logps(logits: &Tensor, labels: &Tensor) -> (Tensor, Tensor) {
    let t = logits.size()[1];
    let lp = logits.narrow(1, 0, t - 1).log_softmax(-1, Kind::Float);
    let target = labels.narrow(1, 1, t - 1);
    let mask = target.ne(-100);
    let idx = target.clamp_min(0).unsqueeze(-1);
    let tok = lp.gather(-1, &idx, false).squeeze_dim(-1) * mask.to_kind(Kind::Float);
    (
        tok.sum_dim_intlist([1i64].as_slice(), false, Kind::Float),
        mask.sum_dim_intlist([1i64].as_slice(), false, Kind::Float),
    )
}

/// One batch's DPO loss and metrics.
#[derive(Debug)]
pub struct DpoOut {
    /// The mean loss (differentiable).
    pub loss: Tensor,
    /// `β (log π − log π_ref)` of the chosen replies `[B]`.
    pub chosen_rewards: Tensor,
    /// The same for the rejected replies.
    pub rejected_rewards: Tensor,
}

impl DpoOut {
    /// Mean reward margin (chosen − rejected).
    pub fn margin(&self) -> f64 {
        (&self.chosen_rewards - &self.rejected_rewards).mean(Kind::Float).double_value(&[])
    }

    /// Share of pairs whose chosen reward is above the rejected one.
    pub fn accuracy(&self) -> f64 {
        self.chosen_rewards.gt_tensor(&self.rejected_rewards).to_kind(Kind::Float).mean(Kind::Float).double_value(&[])
    }
}

/// The loss from the policy's and the reference's summed log-probs of the chosen and rejected replies
/// (`[B]` each) and the replies' token counts (for IPO).
pub fn dpo_loss(
    (pc, pr): (&Tensor, &Tensor),
    (rc, rr): (&Tensor, &Tensor),
    (nc, nr): (&Tensor, &Tensor),
    s: &DpoSettings,
) -> DpoOut {
    let (cl, rl) = (pc - rc, pr - rr);
    let b = s.beta;
    let per = match s.loss {
        DpoLoss::Sigmoid => {
            let d = (&cl - &rl) * b;
            let e = s.label_smoothing;
            -(d.log_sigmoid() * (1.0 - e)) - (-&d).log_sigmoid() * e
        }
        DpoLoss::Hinge => (((&cl - &rl) * -b) + 1.0).relu(),
        DpoLoss::Ipo => {
            let d = &cl / nc.clamp_min(1.0) - &rl / nr.clamp_min(1.0);
            (d - 1.0 / (2.0 * b)).square()
        }
    };
    DpoOut { loss: per.mean(Kind::Float), chosen_rewards: cl.detach() * b, rejected_rewards: rl.detach() * b }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(x: &[f32]) -> Tensor {
        Tensor::from_slice(x)
    }

    #[test]
    fn the_losses_match_their_formulas() {
        // Δ = (−1 − −1.5) − (−2 − −1.5) = 1.
        let (pc, pr, rc, rr, n) = (t(&[-1.0]), t(&[-2.0]), t(&[-1.5]), t(&[-1.5]), t(&[1.0]));
        let run = |loss, label_smoothing| {
            let s = DpoSettings { beta: 0.1, loss, label_smoothing };
            dpo_loss((&pc, &pr), (&rc, &rr), (&n, &n), &s).loss.double_value(&[])
        };
        let ls = |x: f64| -(1.0 + (-x).exp()).ln();
        assert!((run(DpoLoss::Sigmoid, 0.0) - -ls(0.1)).abs() < 1e-6);
        assert!((run(DpoLoss::Sigmoid, 0.2) - (-0.8 * ls(0.1) - 0.2 * ls(-0.1))).abs() < 1e-6);
        assert!((run(DpoLoss::Hinge, 0.0) - 0.9).abs() < 1e-6);
        assert!((run(DpoLoss::Ipo, 0.0) - 16.0).abs() < 1e-5);
        let out = dpo_loss((&pc, &pr), (&rc, &rr), (&n, &n), &DpoSettings::default());
        assert!((out.margin() - 0.1).abs() < 1e-6 && out.accuracy() == 1.0);
    }

    #[test]
    fn sequence_logps_score_only_labelled_next_tokens() {
        // Two positions over a vocabulary of 2: position 0 predicts token 1 (labels[1]); position 1 is last.
        let logits = t(&[0.0, (3f32).ln(), 5.0, 5.0]).view([1, 2, 2]);
        let labels = Tensor::from_slice(&[-100i64, 1]).view([1, 2]);
        let (sum, n) = sequence_logps(&logits, &labels);
        assert!((sum.double_value(&[0]) - (0.75f64).ln()).abs() < 1e-6);
        assert_eq!(n.double_value(&[0]), 1.0);
    }
}
