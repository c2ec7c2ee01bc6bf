//! Choosing the next token: greedy, or sampled with temperature, top-k, top-p and a
//! repetition penalty, from a seeded generator so that a seed reproduces a generation.

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// 0 selects greedy decoding; otherwise logits are divided by it before sampling.
    pub temperature: f32,
    /// Keep the smallest set of tokens whose probability reaches this (1 = off).
    pub top_p: f32,
    /// Keep only the `top_k` most likely tokens (0 = off).
    pub top_k: usize,
    /// Divide positive (multiply negative) logits of recently seen tokens by this (1 = off).
    pub repetition_penalty: f32,
    /// How many of the most recent tokens (prompt included) the penalty looks at.
    pub repetition_window: usize,
    /// Seed of the random generator.
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self::greedy()
    }
}

impl SamplingParams {
    /// Always the most likely token.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            repetition_penalty: 1.0,
            repetition_window: 64,
            seed: 0,
        }
    }

    /// Whether no randomness is involved.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Rejects values outside their meaningful ranges.
    pub fn validate(&self) -> Result<()> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(EngineError::InvalidParameter {
                name: "temperature",
                reason: format!("{} is not a finite number >= 0", self.temperature),
            });
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(EngineError::InvalidParameter {
                name: "top_p",
                reason: format!("{} is not in (0, 1]", self.top_p),
            });
        }
        if !self.repetition_penalty.is_finite() || self.repetition_penalty <= 0.0 {
            return Err(EngineError::InvalidParameter {
                name: "repetition_penalty",
                reason: format!("{} is not a finite number > 0", self.repetition_penalty),
            });
        }
        Ok(())
    }
}

/// xoshiro256** seeded through SplitMix64: small, fast, and fixed here so that a seed
/// gives the same tokens across versions of any dependency.
#[derive(Debug, Clone)]
struct Rng {
    state: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        Self {
            state: [next(), next(), next(), next()],
        }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Picks tokens for one sequence.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
}

/// The index of the largest value (the first one on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

impl Sampler {
    /// A sampler; fails on out-of-range parameters.
    pub fn new(params: SamplingParams) -> Result<Self> {
        params.validate()?;
        let rng = Rng::new(params.seed);
        Ok(Self { params, rng })
    }

    /// Chooses the next token from `logits`; `history` holds the tokens so far (prompt and
    /// output) for the repetition penalty. `logits` is modified in place.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let p = &self.params;
        if p.repetition_penalty != 1.0 {
            let start = history.len().saturating_sub(p.repetition_window);
            let mut seen: Vec<u32> = history[start..].to_vec();
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                if let Some(logit) = logits.get_mut(id as usize) {
                    *logit = if *logit > 0.0 {
                        *logit / p.repetition_penalty
                    } else {
                        *logit * p.repetition_penalty
                    };
                }
            }
        }
        if p.is_greedy() {
            return argmax(logits) as u32;
        }
        // Candidates sorted by logit, most likely first, cut by top-k.
        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| (i as u32, l / p.temperature))
            .collect();
        let keep = if p.top_k > 0 {
            p.top_k.min(candidates.len())
        } else {
            candidates.len()
        };
        if keep < candidates.len() {
            candidates.select_nth_unstable_by(keep - 1, |a, b| b.1.total_cmp(&a.1));
            candidates.truncate(keep);
        }
        candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let max = candidates[0].1;
        let mut probabilities: Vec<f64> = candidates
            .iter()
            .map(|&(_, l)| f64::from(l - max).exp())
            .collect();
        let total: f64 = probabilities.iter().sum();
        for prob in &mut probabilities {
            *prob /= total;
        }
        if p.top_p < 1.0 {
            let mut cumulative = 0.0;
            let mut cut = probabilities.len();
            for (i, prob) in probabilities.iter().enumerate() {
                cumulative += prob;
                if cumulative >= f64::from(p.top_p) {
                    cut = i + 1;
                    break;
                }
            }
            probabilities.truncate(cut);
            let kept: f64 = probabilities.iter().sum();
            for prob in &mut probabilities {
                *prob /= kept;
            }
        }
        let mut target = self.rng.next_f64();
        for (i, prob) in probabilities.iter().enumerate() {
            if target < *prob {
                return candidates[i].0;
            }
            target -= prob;
        }
        // Rounding left a sliver: the last kept candidate takes it.
        candidates[probabilities.len() - 1].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Vec<f32> {
        vec![1.0, 3.0, 2.5, -1.0, 0.0, 2.9]
    }

    #[test]
    fn greedy_takes_the_largest_logit() {
        let mut sampler = Sampler::new(SamplingParams::greedy()).expect("valid");
        assert_eq!(sampler.sample(&mut logits(), &[]), 1);
    }

    #[test]
    fn repetition_penalty_can_change_the_greedy_choice() {
        let params = SamplingParams {
            repetition_penalty: 1.5,
            ..SamplingParams::greedy()
        };
        let mut sampler = Sampler::new(params).expect("valid");
        // Token 1 (3.0) was seen: 3.0 / 1.5 = 2.0 < 2.9.
        assert_eq!(sampler.sample(&mut logits(), &[1]), 5);
    }

    #[test]
    fn same_seed_same_tokens_and_other_seeds_differ() {
        let params = |seed| SamplingParams {
            temperature: 1.5,
            seed,
            ..SamplingParams::greedy()
        };
        let run = |seed| {
            let mut sampler = Sampler::new(params(seed)).expect("valid");
            (0..64)
                .map(|_| sampler.sample(&mut logits(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        // With a high temperature, more than one token comes up.
        let distinct = {
            let mut tokens = run(7);
            tokens.sort_unstable();
            tokens.dedup();
            tokens.len()
        };
        assert!(distinct > 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_top_p_limits_the_choice() {
        let mut top_k = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_k: 1,
            ..SamplingParams::greedy()
        })
        .expect("valid");
        let mut top_p = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_p: 0.5,
            seed: 3,
            ..SamplingParams::greedy()
        })
        .expect("valid");
        for _ in 0..50 {
            assert_eq!(top_k.sample(&mut logits(), &[]), 1);
            // Token 1 holds ~36% and token 5 ~33%: top_p 0.5 keeps exactly those two.
            let token = top_p.sample(&mut logits(), &[]);
            assert!(token == 1 || token == 5, "token {token}");
        }
    }

    #[test]
    fn out_of_range_parameters_are_rejected() {
        for params in [
            SamplingParams {
                temperature: -1.0,
                ..SamplingParams::greedy()
            },
            SamplingParams {
                temperature: f32::NAN,
                ..SamplingParams::greedy()
            },
            SamplingParams {
                top_p: 0.0,
                ..SamplingParams::greedy()
            },
            SamplingParams {
                repetition_penalty: 0.0,
                ..SamplingParams::greedy()
            },
        ] {
            assert!(Sampler::new(params).is_err());
        }
    }
}
