//! The Llama architecture's forward pass, written for batched decoding: the tokens of several
//! sequences go through every matrix multiplication together, while attention reads each
//! sequence's own KV cache.

use candle_core::quantized::GgmlDType;

use crate::error::{EngineError, Result};
use crate::model_file::ModelFile;
use crate::pool::{DisjointChunks, WorkerPool};
use crate::progress::{Progress, ProgressUnit};
use crate::quant::{Activations, BLOCK, KernelKind, Product, WeightMatrix, dot4_f32, run_products};

/// Hyper-parameters of a Llama-architecture model, from GGUF metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Transformer blocks.
    pub layers: usize,
    /// Hidden size.
    pub embedding: usize,
    /// Feed-forward inner size.
    pub feed_forward: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: usize,
    /// Size of one head.
    pub head_dim: usize,
    /// Dimensions rotated by RoPE within a head.
    pub rope_dims: usize,
    /// RoPE frequency base.
    pub rope_base: f32,
    /// RMS norm epsilon.
    pub rms_eps: f32,
    /// The context window the model was trained for.
    pub context_length: usize,
    /// Vocabulary size (rows of the output matrix).
    pub vocab_size: usize,
}

impl LlamaConfig {
    fn from_model(model: &ModelFile, arch: &str) -> Result<Self> {
        let get = |key: &str| -> Result<usize> {
            Ok(model.metadata_u32(&format!("{arch}.{key}"))? as usize)
        };
        let embedding = get("embedding_length")?;
        let heads = get("attention.head_count")?;
        let kv_heads = match model
            .content()
            .metadata
            .get(&format!("{arch}.attention.head_count_kv"))
        {
            Some(_) => get("attention.head_count_kv")?,
            None => heads,
        };
        if heads == 0
            || kv_heads == 0
            || !heads.is_multiple_of(kv_heads)
            || !embedding.is_multiple_of(heads)
        {
            return Err(EngineError::Metadata {
                key: format!("{arch}.attention.head_count"),
                reason: format!("{heads} heads / {kv_heads} kv heads do not divide {embedding}"),
            });
        }
        let head_dim = embedding / heads;
        let rope_dims = match model
            .content()
            .metadata
            .get(&format!("{arch}.rope.dimension_count"))
        {
            Some(_) => get("rope.dimension_count")?,
            None => head_dim,
        };
        let rope_base = match model
            .content()
            .metadata
            .get(&format!("{arch}.rope.freq_base"))
        {
            Some(_) => model.metadata_f32(&format!("{arch}.rope.freq_base"))?,
            None => 10_000.0,
        };
        let tokens = model
            .metadata("tokenizer.ggml.tokens")?
            .to_vec()
            .map(Vec::len)
            .unwrap_or(0);
        let config = Self {
            layers: get("block_count")?,
            embedding,
            feed_forward: get("feed_forward_length")?,
            heads,
            kv_heads,
            head_dim,
            rope_dims,
            rope_base,
            rms_eps: model.metadata_f32(&format!("{arch}.attention.layer_norm_rms_epsilon"))?,
            context_length: get("context_length")?,
            vocab_size: tokens,
        };
        if config.rope_dims > head_dim || !config.rope_dims.is_multiple_of(2) {
            return Err(EngineError::Metadata {
                key: format!("{arch}.rope.dimension_count"),
                reason: format!("{} does not fit head size {head_dim}", config.rope_dims),
            });
        }
        Ok(config)
    }

    /// Width of the key (and value) vectors of one token.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }
}

#[derive(Debug)]
struct Layer {
    attn_norm: Vec<f32>,
    wq: WeightMatrix,
    wk: WeightMatrix,
    wv: WeightMatrix,
    wo: WeightMatrix,
    ffn_norm: Vec<f32>,
    w_gate: WeightMatrix,
    w_up: WeightMatrix,
    w_down: WeightMatrix,
}

/// The keys and values one sequence has produced so far, for every layer.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    /// Per layer: keys then values, token-major (`len * kv_dim` each).
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
}

impl KvCache {
    /// An empty cache for a model.
    pub fn new(config: &LlamaConfig) -> Self {
        Self {
            keys: vec![Vec::new(); config.layers],
            values: vec![Vec::new(); config.layers],
            len: 0,
        }
    }

    /// Tokens cached so far (the next token's position).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the cache.
    pub fn size_in_bytes(&self) -> usize {
        self.keys
            .iter()
            .chain(&self.values)
            .map(|v| v.capacity() * 4)
            .sum()
    }
}

/// Which logits a chunk of tokens needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsWanted {
    /// None (a prompt chunk that is not the last).
    None,
    /// The last token's (to sample the next token).
    Last,
    /// Every token's (teacher forcing, scoring).
    All,
}

/// Tokens of one sequence to run through the model in one forward pass.
#[derive(Debug)]
pub struct SequenceChunk<'a> {
    /// The new tokens, continuing the cache.
    pub tokens: &'a [u32],
    /// The sequence's cache; extended by the tokens.
    pub cache: &'a mut KvCache,
    /// Which logits to return.
    pub logits: LogitsWanted,
}

/// A loaded Llama-architecture model.
#[derive(Debug)]
pub struct LlamaModel {
    config: LlamaConfig,
    token_embedding: WeightMatrix,
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    /// `None` when the output matrix is tied to the token embedding.
    output: Option<WeightMatrix>,
    inverse_frequencies: Vec<f32>,
    kernel: KernelKind,
}

fn tensor_error(name: &str, reason: impl Into<String>) -> EngineError {
    EngineError::Tensor {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

/// Reads a tensor's raw bytes and converts it to the engine's layout; `expected` is the
/// shape in GGUF order (innermost first).
fn load_matrix(model: &ModelFile, name: &str, expected: [usize; 2]) -> Result<WeightMatrix> {
    let info = model
        .content()
        .tensor_infos
        .get(name)
        .ok_or_else(|| tensor_error(name, "missing"))?;
    // candle reports GGUF dims outermost first: (rows, cols).
    let dims = info.shape.dims();
    let [cols, rows] = expected;
    if dims != [rows, cols] {
        return Err(tensor_error(
            name,
            format!("shape {dims:?}, expected [{rows}, {cols}]"),
        ));
    }
    match info.ggml_dtype {
        GgmlDType::Q4_1 => WeightMatrix::from_q4_1_bytes(rows, cols, raw_bytes(model, name)?),
        GgmlDType::Q8_0 => WeightMatrix::from_q8_0_bytes(rows, cols, raw_bytes(model, name)?),
        _ => {
            // Other types: let candle dequantize; slower, but any GGUF type works.
            let values = model
                .tensor(name)?
                .dequantize(&candle_core::Device::Cpu)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            if !cols.is_multiple_of(BLOCK) {
                return Err(tensor_error(
                    name,
                    format!("{cols} columns not a multiple of {BLOCK}"),
                ));
            }
            WeightMatrix::from_f32(rows, cols, values)
        }
    }
}

fn raw_bytes<'a>(model: &'a ModelFile, name: &str) -> Result<&'a [u8]> {
    model
        .tensor_bytes(name)
        .ok_or_else(|| tensor_error(name, "data lies outside the file"))
}

fn load_vector(model: &ModelFile, name: &str, len: usize) -> Result<Vec<f32>> {
    let values = model
        .tensor(name)?
        .dequantize(&candle_core::Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    if values.len() != len {
        return Err(tensor_error(
            name,
            format!("{} values, expected {len}", values.len()),
        ));
    }
    Ok(values)
}

fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let mean_square = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let scale = 1.0 / (mean_square + eps).sqrt();
    for ((o, &v), &w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

impl LlamaModel {
    /// Loads the weights of a Llama-architecture GGUF model.
    pub fn load(
        model: &ModelFile,
        kernel: KernelKind,
        progress: &mut dyn Progress,
    ) -> Result<Self> {
        let arch = model.metadata_str("general.architecture")?;
        if arch != "llama" {
            return Err(EngineError::UnsupportedArchitecture(arch.to_owned()));
        }
        let config = LlamaConfig::from_model(model, arch)?;
        let d = config.embedding;
        let kv = config.kv_dim();
        let ff = config.feed_forward;
        let total = config.layers as u64 + 2;
        progress.start("loading", total, ProgressUnit::Tensors);
        let token_embedding = load_matrix(model, "token_embd.weight", [d, config.vocab_size])?;
        progress.update(1);
        let mut layers = Vec::with_capacity(config.layers);
        for i in 0..config.layers {
            let name = |suffix: &str| format!("blk.{i}.{suffix}.weight");
            layers.push(Layer {
                attn_norm: load_vector(model, &name("attn_norm"), d)?,
                wq: load_matrix(model, &name("attn_q"), [d, d])?,
                wk: load_matrix(model, &name("attn_k"), [d, kv])?,
                wv: load_matrix(model, &name("attn_v"), [d, kv])?,
                wo: load_matrix(model, &name("attn_output"), [d, d])?,
                ffn_norm: load_vector(model, &name("ffn_norm"), d)?,
                w_gate: load_matrix(model, &name("ffn_gate"), [d, ff])?,
                w_up: load_matrix(model, &name("ffn_up"), [d, ff])?,
                w_down: load_matrix(model, &name("ffn_down"), [ff, d])?,
            });
            progress.update(i as u64 + 2);
        }
        let output_norm = load_vector(model, "output_norm.weight", d)?;
        let output = if model.has_tensor("output.weight") {
            Some(load_matrix(model, "output.weight", [d, config.vocab_size])?)
        } else {
            None
        };
        progress.update(total);
        progress.finish();
        let inverse_frequencies = (0..config.rope_dims / 2)
            .map(|i| {
                config
                    .rope_base
                    .powf(-2.0 * i as f32 / config.rope_dims as f32)
            })
            .collect();
        Ok(Self {
            config,
            token_embedding,
            layers,
            output_norm,
            output,
            inverse_frequencies,
            kernel,
        })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Which matmul kernel runs.
    pub fn kernel(&self) -> KernelKind {
        self.kernel
    }

    /// Switches the matmul kernel (tests compare them).
    pub fn set_kernel(&mut self, kernel: KernelKind) {
        self.kernel = kernel;
    }

    /// Bytes held by the weights.
    pub fn weights_size_in_bytes(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down]
                    .iter()
                    .map(|m| m.size_in_bytes())
                    .sum::<usize>()
            })
            .sum();
        layers
            + self.token_embedding.size_in_bytes()
            + self.output.as_ref().map_or(0, WeightMatrix::size_in_bytes)
    }

    fn output_matrix(&self) -> &WeightMatrix {
        self.output.as_ref().unwrap_or(&self.token_embedding)
    }

    /// The rotation of every RoPE pair at every batch position: `(sin, cos)` of
    /// `position * inverse_frequency[i]`, `rope_dims / 2` per token (the same for every layer
    /// and head, so computed once per forward pass).
    fn rope_table(&self, positions: &[usize]) -> Vec<(f32, f32)> {
        positions
            .iter()
            .flat_map(|&position| {
                self.inverse_frequencies
                    .iter()
                    .map(move |&frequency| (position as f32 * frequency).sin_cos())
            })
            .collect()
    }

    /// Rotates pairs `(2i, 2i+1)` of every head by `position * inverse_frequency[i]`
    /// (llama.cpp's "normal" RoPE mode, which GGUF Llama weights are permuted for).
    fn apply_rope(&self, rows: &mut [f32], width: usize, table: &[(f32, f32)]) {
        let head_dim = self.config.head_dim;
        let pairs = self.inverse_frequencies.len();
        rows.chunks_exact_mut(width)
            .zip(table.chunks_exact(pairs))
            .for_each(|(row, rotations)| {
                for head in row.chunks_exact_mut(head_dim) {
                    for (i, &(sin, cos)) in rotations.iter().enumerate() {
                        let (a, b) = (head[2 * i], head[2 * i + 1]);
                        head[2 * i] = a * cos - b * sin;
                        head[2 * i + 1] = a * sin + b * cos;
                    }
                }
            });
    }

    /// Runs the chunks through the model together and returns, per chunk, the logits it
    /// asked for (row-major, `vocab_size` per token), on the pool's threads.
    pub(crate) fn forward(
        &self,
        pool: &WorkerPool,
        chunks: &mut [SequenceChunk<'_>],
    ) -> Result<Vec<Vec<f32>>> {
        let cfg = &self.config;
        let (d, kv_dim, ff) = (cfg.embedding, cfg.kv_dim(), cfg.feed_forward);
        let total: usize = chunks.iter().map(|c| c.tokens.len()).sum();
        if total == 0 {
            return Ok(vec![Vec::new(); chunks.len()]);
        }
        // Token t of the batch: which chunk it belongs to and its position in its sequence.
        let mut owner = Vec::with_capacity(total);
        let mut positions = Vec::with_capacity(total);
        for (index, chunk) in chunks.iter().enumerate() {
            if chunk.cache.keys.len() != cfg.layers {
                return Err(EngineError::InvalidParameter {
                    name: "cache",
                    reason: "the KV cache was made for another model".to_owned(),
                });
            }
            for i in 0..chunk.tokens.len() {
                owner.push(index);
                positions.push(chunk.cache.len + i);
            }
        }
        let mut x = vec![0.0f32; total * d];
        for (row, &token) in x
            .chunks_exact_mut(d)
            .zip(chunks.iter().flat_map(|c| c.tokens.iter()))
        {
            if token as usize >= cfg.vocab_size {
                return Err(EngineError::TokenOutOfRange {
                    id: token,
                    vocab_size: cfg.vocab_size,
                });
            }
            self.token_embedding.dequantize_row(token as usize, row);
        }

        let mut normed = vec![0.0f32; total * d];
        let mut q = vec![0.0f32; total * d];
        let mut k = vec![0.0f32; total * kv_dim];
        let mut v = vec![0.0f32; total * kv_dim];
        let mut attention = vec![0.0f32; total * d];
        let mut projected = vec![0.0f32; total * d];
        let mut gate = vec![0.0f32; total * ff];
        let mut up = vec![0.0f32; total * ff];
        // Scratch reused by every product of the pass.
        let mut quantized = Vec::new();
        let mut reorder = Vec::new();
        let rope = self.rope_table(&positions);
        let kernel = self.kernel;

        for (layer_index, layer) in self.layers.iter().enumerate() {
            // Element-wise steps are cheap next to the matmuls: run them on this thread
            // between the parallel regions.
            for (out, row) in normed.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                rms_norm(row, &layer.attn_norm, cfg.rms_eps, out);
            }
            let input = Activations::quantize(pool, &normed, total, d, &mut quantized);
            run_products(
                pool,
                kernel,
                &mut [
                    Product {
                        matrix: &layer.wq,
                        input,
                        out: &mut q,
                    },
                    Product {
                        matrix: &layer.wk,
                        input,
                        out: &mut k,
                    },
                    Product {
                        matrix: &layer.wv,
                        input,
                        out: &mut v,
                    },
                ],
                &mut reorder,
            );
            self.apply_rope(&mut q, d, &rope);
            self.apply_rope(&mut k, kv_dim, &rope);

            let mut offset = 0;
            for chunk in chunks.iter_mut() {
                let n = chunk.tokens.len();
                chunk.cache.keys[layer_index]
                    .extend_from_slice(&k[offset * kv_dim..(offset + n) * kv_dim]);
                chunk.cache.values[layer_index]
                    .extend_from_slice(&v[offset * kv_dim..(offset + n) * kv_dim]);
                offset += n;
            }
            let caches: Vec<(&[f32], &[f32])> = chunks
                .iter()
                .map(|c| {
                    (
                        c.cache.keys[layer_index].as_slice(),
                        c.cache.values[layer_index].as_slice(),
                    )
                })
                .collect();
            self.attend(pool, &q, &caches, &owner, &positions, &mut attention);

            let input = Activations::quantize(pool, &attention, total, d, &mut quantized);
            run_products(
                pool,
                kernel,
                &mut [Product {
                    matrix: &layer.wo,
                    input,
                    out: &mut projected,
                }],
                &mut reorder,
            );
            x.iter_mut().zip(&projected).for_each(|(a, b)| *a += b);

            for (out, row) in normed.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
                rms_norm(row, &layer.ffn_norm, cfg.rms_eps, out);
            }
            let input = Activations::quantize(pool, &normed, total, d, &mut quantized);
            run_products(
                pool,
                kernel,
                &mut [
                    Product {
                        matrix: &layer.w_gate,
                        input,
                        out: &mut gate,
                    },
                    Product {
                        matrix: &layer.w_up,
                        input,
                        out: &mut up,
                    },
                ],
                &mut reorder,
            );
            gate.iter_mut().zip(&up).for_each(|(g, u)| {
                let silu = *g / (1.0 + (-*g).exp());
                *g = silu * u;
            });
            let input = Activations::quantize(pool, &gate, total, ff, &mut quantized);
            run_products(
                pool,
                kernel,
                &mut [Product {
                    matrix: &layer.w_down,
                    input,
                    out: &mut projected,
                }],
                &mut reorder,
            );
            x.iter_mut().zip(&projected).for_each(|(a, b)| *a += b);
        }
        for chunk in chunks.iter_mut() {
            chunk.cache.len += chunk.tokens.len();
        }

        // Only the rows whose logits are wanted go through the (large) output matrix.
        let mut wanted_rows = Vec::new();
        let mut start = 0;
        for chunk in chunks.iter() {
            let n = chunk.tokens.len();
            match chunk.logits {
                LogitsWanted::None => {}
                LogitsWanted::Last => {
                    if n > 0 {
                        wanted_rows.push(start + n - 1);
                    }
                }
                LogitsWanted::All => wanted_rows.extend(start..start + n),
            }
            start += n;
        }
        let mut final_rows = vec![0.0f32; wanted_rows.len() * d];
        for (out, &row) in final_rows.chunks_exact_mut(d).zip(&wanted_rows) {
            rms_norm(
                &x[row * d..(row + 1) * d],
                &self.output_norm,
                cfg.rms_eps,
                out,
            );
        }
        let vocab = cfg.vocab_size;
        let mut logits = vec![0.0f32; wanted_rows.len() * vocab];
        if !wanted_rows.is_empty() {
            let input =
                Activations::quantize(pool, &final_rows, wanted_rows.len(), d, &mut quantized);
            run_products(
                pool,
                kernel,
                &mut [Product {
                    matrix: self.output_matrix(),
                    input,
                    out: &mut logits,
                }],
                &mut reorder,
            );
        }
        if let [_only] = chunks {
            // One sequence (plain decoding): all the logits are its own; no copy.
            return Ok(vec![logits]);
        }
        let mut per_chunk = Vec::with_capacity(chunks.len());
        let mut cursor = 0;
        for chunk in chunks.iter() {
            let rows = match chunk.logits {
                LogitsWanted::None => 0,
                LogitsWanted::Last => usize::from(!chunk.tokens.is_empty()),
                LogitsWanted::All => chunk.tokens.len(),
            };
            per_chunk.push(logits[cursor * vocab..(cursor + rows) * vocab].to_vec());
            cursor += rows;
        }
        Ok(per_chunk)
    }

    /// Causal self-attention of every batch token against its own sequence's cache, one
    /// parallel task per token and head.
    fn attend(
        &self,
        pool: &WorkerPool,
        q: &[f32],
        caches: &[(&[f32], &[f32])],
        owner: &[usize],
        positions: &[usize],
        out: &mut [f32],
    ) {
        let cfg = &self.config;
        let (d, head_dim, kv_dim, heads) = (cfg.embedding, cfg.head_dim, cfg.kv_dim(), cfg.heads);
        let group = heads / cfg.kv_heads;
        let scale = 1.0 / (head_dim as f32).sqrt();
        let pieces = DisjointChunks::new(out, head_dim);
        pool.for_each_task(owner.len() * heads, &|task| {
            let (t, head) = (task / heads, task % heads);
            let (keys, values) = caches[owner[t]];
            // The token sees its own position and every earlier one.
            let visible = positions[t] + 1;
            let kv_head = head / group;
            let query = &q[t * d + head * head_dim..t * d + (head + 1) * head_dim];
            let key = |j: usize| &keys[j * kv_dim + kv_head * head_dim..][..head_dim];
            // Four keys at a time (independent sums); the last run repeats the final key so
            // that every score comes from the same arithmetic.
            let mut scores = vec![0.0f32; visible.next_multiple_of(4)];
            for (run, out) in scores.chunks_exact_mut(4).enumerate() {
                let j = |i: usize| key((4 * run + i).min(visible - 1));
                let dots = dot4_f32(query, [j(0), j(1), j(2), j(3)]);
                for (score, dot) in out.iter_mut().zip(dots) {
                    *score = dot * scale;
                }
            }
            scores.truncate(visible);
            let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
            let mut sum = 0.0f32;
            for score in scores.iter_mut() {
                *score = (*score - max).exp();
                sum += *score;
            }
            let inverse = 1.0 / sum;
            let head_out = pieces.claim(task);
            head_out.fill(0.0);
            for (j, &weight) in scores.iter().enumerate() {
                let value = &values[j * kv_dim + kv_head * head_dim..][..head_dim];
                let p = weight * inverse;
                for (o, &v) in head_out.iter_mut().zip(value) {
                    *o = p.mul_add(v, *o);
                }
            }
        });
    }
}
