//! Supervised steps: a micro-batch's forward and backward through the fused head, and the validation loss.

use banter_core::records::Block;
use banter_model::Pass;

use crate::data;
use crate::state::Loop;

impl Loop<'_> {
    /// Forward and backward of one micro-batch of blocks; returns the mean loss and the tokens.
    pub(crate) fn sft_micro(&self, picked: &[usize], loss_mul: f64) -> crate::Result<(f64, i64)> {
        {
            let owned = self.setup.train.fetch(picked.iter().copied())?;
            let idx: Vec<&Block> = owned.iter().collect();
            let (ids, labels, n) = data::batch(&idx, self.setup.tok.pad_id, self.device);
            let (model, pass) = (&self.setup.model, self.pass);
            let step = || {
                if self.s.gradient_checkpointing {
                    model.loss_backward_checkpointed(&ids, &labels, pass, loss_mul)
                } else {
                    model.loss_backward(&ids, &labels, pass, loss_mul)
                }
            };
            let (l, _) = if self.cuda_autocast { tch::autocast(true, step) } else { step() };
            Ok((l, n))
        }
    }

    pub(crate) fn eval_loss(&self) -> crate::Result<f64> {
        let _g = tch::no_grad_guard();
        let val = &self.setup.val;
        let n = if self.s.opt.eval_blocks == 0 { val.len() } else { self.s.opt.eval_blocks.min(val.len()) };
        let (mut total, mut count) = (0.0f64, 0i64);
        let bs = self.s.opt.batch_size.max(1);
        // Distributed, each rank scores every world-th batch; the sums are added.
        let (rank, world) = (self.rank(), self.world());
        for (i, start) in (0..n).step_by(bs).enumerate() {
            if i % world != rank {
                continue;
            }
            let chunk = val.fetch(start..(start + bs).min(n))?;
            let refs: Vec<&Block> = chunk.iter().collect();
            let (ids, labels, _) = data::batch(&refs, self.setup.tok.pad_id, self.device);
            let (loss, k) = self.setup.model.loss(&ids, &labels, Pass { train: false, ..self.pass });
            if k > 0 {
                total += loss.double_value(&[]) * k as f64;
                count += k;
            }
        }
        let sums = self.sum_across(&[total, count as f64])?;
        let (total, count) = (sums[0], sums[1]);
        Ok(if count == 0.0 { f64::NAN } else { total / count })
    }
}
