//! Quantized weight matrices and their matrix multiplication kernels.
//!
//! Weights are repacked at load time from GGUF blocks (f16 scales) into blocks with f32
//! scales, so that the inner loops do no conversions. Activations are quantized per row to
//! 8-bit blocks exactly as llama.cpp does (Q8_1 for Q4_1 weights, Q8_0 for Q8_0 weights), and
//! the dot products use AVX2/FMA when the CPU has them, with a scalar fallback that computes
//! the same integer sums.

use half::f16;
use rayon::prelude::*;

use crate::error::{EngineError, Result};

/// Elements per quantization block (Q4_1, Q8_0, Q8_1).
pub(crate) const BLOCK: usize = 32;

/// A Q4_1 block: `value = d * q + m` with 4-bit `q`; low nibbles hold elements 0..16,
/// high nibbles elements 16..32 (GGUF layout).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(crate) struct BlockQ4_1 {
    pub(crate) d: f32,
    pub(crate) m: f32,
    pub(crate) qs: [u8; 16],
}

/// A Q8_0 block: `value = d * q` with 8-bit signed `q`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(crate) struct BlockQ8_0 {
    pub(crate) d: f32,
    pub(crate) qs: [i8; 32],
}

/// A quantized activation block; `s = d * sum(q)` serves Q4_1's offset term.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub(crate) struct BlockQ8_1 {
    pub(crate) d: f32,
    pub(crate) s: f32,
    pub(crate) qs: [i8; 32],
}

impl Default for BlockQ8_1 {
    fn default() -> Self {
        Self {
            d: 0.0,
            s: 0.0,
            qs: [0; 32],
        }
    }
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

fn round_to_f16(value: f32) -> f32 {
    f16::from_f32(value).to_f32()
}

/// Quantizes one row of activations (length a multiple of [`BLOCK`]) to 8-bit blocks, with
/// llama.cpp's rounding: scales are stored at f16 precision.
pub(crate) fn quantize_row_q8(row: &[f32], out: &mut [BlockQ8_1]) {
    for (chunk, block) in row.chunks_exact(BLOCK).zip(out.iter_mut()) {
        let amax = chunk.iter().fold(0.0f32, |acc, v| acc.max(v.abs()));
        let d = amax / 127.0;
        let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (q, &v) in block.qs.iter_mut().zip(chunk) {
            let rounded = (v * inverse).round() as i8;
            *q = rounded;
            sum += i32::from(rounded);
        }
        block.d = round_to_f16(d);
        block.s = round_to_f16(d * sum as f32);
    }
}

/// Which dot-product implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelKind {
    /// Portable Rust.
    Scalar,
    /// x86-64 AVX2 + FMA intrinsics.
    Avx2,
}

impl KernelKind {
    /// The fastest kernel this CPU supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Self::Avx2;
            }
        }
        Self::Scalar
    }
}

fn dot_q4_1_q8_1_scalar(weights: &[BlockQ4_1], activations: &[BlockQ8_1]) -> f32 {
    let mut total = 0.0f32;
    for (w, a) in weights.iter().zip(activations) {
        let mut sum = 0i32;
        for j in 0..16 {
            let low = i32::from(w.qs[j] & 0x0F);
            let high = i32::from(w.qs[j] >> 4);
            sum += low * i32::from(a.qs[j]) + high * i32::from(a.qs[j + 16]);
        }
        total += w.d * a.d * sum as f32 + w.m * a.s;
    }
    total
}

fn dot_q8_0_q8_0_scalar(weights: &[BlockQ8_0], activations: &[BlockQ8_1]) -> f32 {
    let mut total = 0.0f32;
    for (w, a) in weights.iter().zip(activations) {
        let sum: i32 =
            w.qs.iter()
                .zip(&a.qs)
                .map(|(&x, &y)| i32::from(x) * i32::from(y))
                .sum();
        total += w.d * a.d * sum as f32;
    }
    total
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{BlockQ4_1, BlockQ8_0, BlockQ8_1};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    fn horizontal_sum(v: __m256) -> f32 {
        let high = _mm256_extractf128_ps::<1>(v);
        let low = _mm256_castps256_ps128(v);
        let sum4 = _mm_add_ps(low, high);
        let sum2 = _mm_add_ps(sum4, _mm_movehl_ps(sum4, sum4));
        let sum1 = _mm_add_ss(sum2, _mm_shuffle_ps::<1>(sum2, sum2));
        _mm_cvtss_f32(sum1)
    }

    /// Q4_1 x Q8_1 dot product over equal-length block slices.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_q4_1_q8_1(weights: &[BlockQ4_1], activations: &[BlockQ8_1]) -> f32 {
        let mask = _mm_set1_epi8(0x0F);
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_ps();
        let mut offsets = 0.0f32;
        for (w, a) in weights.iter().zip(activations) {
            // SAFETY: `w.qs` is 16 readable bytes and `a.qs` 32; unaligned loads allow any
            // address.
            let (packed, q8) = unsafe {
                (
                    _mm_loadu_si128(w.qs.as_ptr().cast()),
                    _mm256_loadu_si256(a.qs.as_ptr().cast()),
                )
            };
            let low = _mm_and_si128(packed, mask);
            let high = _mm_and_si128(_mm_srli_epi16::<4>(packed), mask);
            let q4 = _mm256_set_m128i(high, low);
            // Unsigned 4-bit times signed 8-bit: pair sums fit in i16 (at most 2*15*128).
            let pairs = _mm256_maddubs_epi16(q4, q8);
            let sums = _mm256_madd_epi16(pairs, ones);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(w.d * a.d), _mm256_cvtepi32_ps(sums), acc);
            offsets += w.m * a.s;
        }
        horizontal_sum(acc) + offsets
    }

    /// Q4_1 x Q8_1 dot products of one weight row with four activation rows: the nibbles are
    /// unpacked once per block for all four. Per row, the arithmetic is exactly that of
    /// [`dot_q4_1_q8_1`], so results are bit-identical to four single calls.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_q4_1_q8_1_x4(
        weights: &[BlockQ4_1],
        activations: [&[BlockQ8_1]; 4],
    ) -> [f32; 4] {
        let mask = _mm_set1_epi8(0x0F);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut offsets = [0.0f32; 4];
        for (b, w) in weights.iter().enumerate() {
            // SAFETY: `w.qs` is 16 readable bytes; unaligned loads allow any address.
            let packed = unsafe { _mm_loadu_si128(w.qs.as_ptr().cast()) };
            let low = _mm_and_si128(packed, mask);
            let high = _mm_and_si128(_mm_srli_epi16::<4>(packed), mask);
            let q4 = _mm256_set_m128i(high, low);
            for j in 0..4 {
                let a = &activations[j][b];
                // SAFETY: `a.qs` is 32 readable bytes; unaligned loads allow any address.
                let q8 = unsafe { _mm256_loadu_si256(a.qs.as_ptr().cast()) };
                let pairs = _mm256_maddubs_epi16(q4, q8);
                let sums = _mm256_madd_epi16(pairs, ones);
                acc[j] =
                    _mm256_fmadd_ps(_mm256_set1_ps(w.d * a.d), _mm256_cvtepi32_ps(sums), acc[j]);
                offsets[j] += w.m * a.s;
            }
        }
        [
            horizontal_sum(acc[0]) + offsets[0],
            horizontal_sum(acc[1]) + offsets[1],
            horizontal_sum(acc[2]) + offsets[2],
            horizontal_sum(acc[3]) + offsets[3],
        ]
    }

    /// Q8_0 x Q8_0 dot product over equal-length block slices.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_q8_0_q8_0(weights: &[BlockQ8_0], activations: &[BlockQ8_1]) -> f32 {
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_ps();
        for (w, a) in weights.iter().zip(activations) {
            // SAFETY: both `qs` arrays are 32 readable bytes; unaligned loads allow any address.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_si256(w.qs.as_ptr().cast()),
                    _mm256_loadu_si256(a.qs.as_ptr().cast()),
                )
            };
            // maddubs needs one unsigned operand: move x's sign onto y.
            let abs_x = _mm256_sign_epi8(x, x);
            let signed_y = _mm256_sign_epi8(y, x);
            let pairs = _mm256_maddubs_epi16(abs_x, signed_y);
            let sums = _mm256_madd_epi16(pairs, ones);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(w.d * a.d), _mm256_cvtepi32_ps(sums), acc);
        }
        horizontal_sum(acc)
    }
}

fn dot_q4_1(kind: KernelKind, weights: &[BlockQ4_1], activations: &[BlockQ8_1]) -> f32 {
    match kind {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `KernelKind::Avx2` is only produced by `detect` after checking that the CPU
        // supports AVX2 and FMA (or by tests that check the same).
        KernelKind::Avx2 => unsafe { avx2::dot_q4_1_q8_1(weights, activations) },
        _ => dot_q4_1_q8_1_scalar(weights, activations),
    }
}

fn dot_q8_0(kind: KernelKind, weights: &[BlockQ8_0], activations: &[BlockQ8_1]) -> f32 {
    match kind {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot_q4_1`, `Avx2` implies the CPU supports AVX2 and FMA.
        KernelKind::Avx2 => unsafe { avx2::dot_q8_0_q8_0(weights, activations) },
        _ => dot_q8_0_q8_0_scalar(weights, activations),
    }
}

/// The stored form of a weight matrix.
#[derive(Debug)]
enum Storage {
    Q4_1(Vec<BlockQ4_1>),
    Q8_0(Vec<BlockQ8_0>),
    /// Any other GGUF type, dequantized at load.
    F32(Vec<f32>),
}

/// A weight matrix of `rows` outputs by `cols` inputs (row-major, GGUF order).
#[derive(Debug)]
pub(crate) struct WeightMatrix {
    rows: usize,
    cols: usize,
    storage: Storage,
}

/// Weight rows handled per parallel task: enough work per task to amortize scheduling,
/// small enough to balance over threads.
const ROWS_PER_TASK: usize = 16;

impl WeightMatrix {
    /// Repacks GGUF Q4_1 bytes (blocks of f16 d, f16 m, 16 bytes of nibbles).
    pub(crate) fn from_q4_1_bytes(rows: usize, cols: usize, bytes: &[u8]) -> Result<Self> {
        const SIZE: usize = 20;
        let blocks = check_size("Q4_1", rows, cols, bytes.len(), SIZE)?;
        let storage = (0..blocks)
            .map(|i| {
                let raw = &bytes[i * SIZE..(i + 1) * SIZE];
                let mut qs = [0u8; 16];
                qs.copy_from_slice(&raw[4..20]);
                BlockQ4_1 {
                    d: f16_at(raw, 0),
                    m: f16_at(raw, 2),
                    qs,
                }
            })
            .collect();
        Ok(Self {
            rows,
            cols,
            storage: Storage::Q4_1(storage),
        })
    }

    /// Repacks GGUF Q8_0 bytes (blocks of f16 d and 32 signed bytes).
    pub(crate) fn from_q8_0_bytes(rows: usize, cols: usize, bytes: &[u8]) -> Result<Self> {
        const SIZE: usize = 34;
        let blocks = check_size("Q8_0", rows, cols, bytes.len(), SIZE)?;
        let storage = (0..blocks)
            .map(|i| {
                let raw = &bytes[i * SIZE..(i + 1) * SIZE];
                let mut qs = [0i8; 32];
                for (q, &b) in qs.iter_mut().zip(&raw[2..34]) {
                    *q = b as i8;
                }
                BlockQ8_0 {
                    d: f16_at(raw, 0),
                    qs,
                }
            })
            .collect();
        Ok(Self {
            rows,
            cols,
            storage: Storage::Q8_0(storage),
        })
    }

    /// Wraps dequantized weights.
    pub(crate) fn from_f32(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(EngineError::Tensor {
                name: "f32 matrix".to_owned(),
                reason: format!("{} values for {rows}x{cols}", data.len()),
            });
        }
        Ok(Self {
            rows,
            cols,
            storage: Storage::F32(data),
        })
    }

    /// Bytes held by the weights.
    pub(crate) fn size_in_bytes(&self) -> usize {
        match &self.storage {
            Storage::Q4_1(b) => size_of_val(b.as_slice()),
            Storage::Q8_0(b) => size_of_val(b.as_slice()),
            Storage::F32(v) => size_of_val(v.as_slice()),
        }
    }

    /// Writes row `row` of the matrix, dequantized, into `out` (embedding lookups).
    pub(crate) fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let blocks_per_row = self.cols / BLOCK;
        match &self.storage {
            Storage::Q4_1(blocks) => {
                let row_blocks = &blocks[row * blocks_per_row..(row + 1) * blocks_per_row];
                for (block, chunk) in row_blocks.iter().zip(out.chunks_exact_mut(BLOCK)) {
                    for j in 0..16 {
                        chunk[j] = block.d * f32::from(block.qs[j] & 0x0F) + block.m;
                        chunk[j + 16] = block.d * f32::from(block.qs[j] >> 4) + block.m;
                    }
                }
            }
            Storage::Q8_0(blocks) => {
                let row_blocks = &blocks[row * blocks_per_row..(row + 1) * blocks_per_row];
                for (block, chunk) in row_blocks.iter().zip(out.chunks_exact_mut(BLOCK)) {
                    for (v, &q) in chunk.iter_mut().zip(&block.qs) {
                        *v = block.d * f32::from(q);
                    }
                }
            }
            Storage::F32(data) => {
                out.copy_from_slice(&data[row * self.cols..(row + 1) * self.cols]);
            }
        }
    }

    /// `out[t][r] = sum_c input[t][c] * W[r][c]` for `tokens` input rows; `out` has
    /// `tokens * rows` entries. Runs on the current rayon pool.
    pub(crate) fn matmul(&self, kind: KernelKind, input: &[f32], tokens: usize, out: &mut [f32]) {
        debug_assert_eq!(input.len(), tokens * self.cols);
        debug_assert_eq!(out.len(), tokens * self.rows);
        let cols = self.cols;
        let rows = self.rows;
        // Computed column-major (one weight row against every token) so that each weight
        // row is read from memory once per call, then transposed.
        let mut transposed = vec![0.0f32; rows * tokens];
        match &self.storage {
            Storage::F32(data) => {
                transposed
                    .par_chunks_mut(tokens * ROWS_PER_TASK)
                    .enumerate()
                    .for_each(|(task, chunk)| {
                        for (i, out_row) in chunk.chunks_mut(tokens).enumerate() {
                            let r = task * ROWS_PER_TASK + i;
                            let weights = &data[r * cols..(r + 1) * cols];
                            for (t, value) in out_row.iter_mut().enumerate() {
                                let x = &input[t * cols..(t + 1) * cols];
                                *value = weights.iter().zip(x).map(|(w, x)| w * x).sum();
                            }
                        }
                    });
            }
            Storage::Q4_1(blocks) => {
                let acts = quantize_rows(input, tokens, cols);
                let per_row = cols / BLOCK;
                let act = |t: usize| &acts[t * per_row..(t + 1) * per_row];
                self.quantized_columns(&mut transposed, tokens, |r, out_row| {
                    let weights = &blocks[r * per_row..(r + 1) * per_row];
                    let mut t = 0;
                    #[cfg(target_arch = "x86_64")]
                    if kind == KernelKind::Avx2 {
                        while t + 4 <= tokens {
                            // SAFETY: `Avx2` is only selected when the CPU has AVX2 and FMA.
                            let dots = unsafe {
                                avx2::dot_q4_1_q8_1_x4(
                                    weights,
                                    [act(t), act(t + 1), act(t + 2), act(t + 3)],
                                )
                            };
                            out_row[t..t + 4].copy_from_slice(&dots);
                            t += 4;
                        }
                    }
                    for (i, value) in out_row.iter_mut().enumerate().skip(t) {
                        *value = dot_q4_1(kind, weights, act(i));
                    }
                });
            }
            Storage::Q8_0(blocks) => {
                let acts = quantize_rows(input, tokens, cols);
                let per_row = cols / BLOCK;
                self.quantized_columns(&mut transposed, tokens, |r, out_row| {
                    let weights = &blocks[r * per_row..(r + 1) * per_row];
                    for (t, value) in out_row.iter_mut().enumerate() {
                        *value = dot_q8_0(kind, weights, &acts[t * per_row..(t + 1) * per_row]);
                    }
                });
            }
        }
        if tokens == 1 {
            out.copy_from_slice(&transposed);
        } else {
            for (r, column) in transposed.chunks_exact(tokens).enumerate() {
                for (t, &value) in column.iter().enumerate() {
                    out[t * rows + r] = value;
                }
            }
        }
    }

    /// Runs `fill(r, out)` for every weight row `r` in parallel; `out` receives that row's
    /// result for every token.
    fn quantized_columns<F>(&self, transposed: &mut [f32], tokens: usize, fill: F)
    where
        F: Fn(usize, &mut [f32]) + Sync,
    {
        transposed
            .par_chunks_mut(tokens * ROWS_PER_TASK)
            .enumerate()
            .for_each(|(task, chunk)| {
                for (i, out_row) in chunk.chunks_mut(tokens).enumerate() {
                    fill(task * ROWS_PER_TASK + i, out_row);
                }
            });
    }
}

fn quantize_rows(input: &[f32], tokens: usize, cols: usize) -> Vec<BlockQ8_1> {
    let per_row = cols / BLOCK;
    let mut activations = vec![BlockQ8_1::default(); tokens * per_row];
    if tokens == 1 {
        // One row: not worth a thread-pool round trip.
        quantize_row_q8(input, &mut activations);
    } else {
        activations
            .par_chunks_mut(per_row)
            .zip(input.par_chunks(cols))
            .for_each(|(blocks, row)| quantize_row_q8(row, blocks));
    }
    activations
}

fn check_size(
    kind: &str,
    rows: usize,
    cols: usize,
    len: usize,
    block_bytes: usize,
) -> Result<usize> {
    if !cols.is_multiple_of(BLOCK) {
        return Err(EngineError::Tensor {
            name: format!("{kind} matrix"),
            reason: format!("{cols} columns are not a multiple of {BLOCK}"),
        });
    }
    let blocks = rows * cols / BLOCK;
    if len != blocks * block_bytes {
        return Err(EngineError::Tensor {
            name: format!("{kind} matrix"),
            reason: format!(
                "{len} bytes for {rows}x{cols} (expected {})",
                blocks * block_bytes
            ),
        });
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values (xorshift), so the test needs no dependency.
    fn values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
            })
            .collect()
    }

    fn q4_1_bytes(rows: usize, cols: usize, seed: u64) -> Vec<u8> {
        let raw = values(seed, rows * cols / BLOCK * 20, 256.0);
        let mut bytes: Vec<u8> = raw.iter().map(|v| (v + 128.0) as u8).collect();
        // Keep scales finite and small: overwrite the f16 fields with sane values.
        for (i, block) in bytes.chunks_exact_mut(20).enumerate() {
            let d = f16::from_f32(0.01 + (i % 7) as f32 * 0.003).to_le_bytes();
            let m = f16::from_f32(-0.05 + (i % 5) as f32 * 0.02).to_le_bytes();
            block[0..2].copy_from_slice(&d);
            block[2..4].copy_from_slice(&m);
        }
        bytes
    }

    fn q8_0_bytes(rows: usize, cols: usize, seed: u64) -> Vec<u8> {
        let raw = values(seed, rows * cols / BLOCK * 34, 254.0);
        let mut bytes: Vec<u8> = raw.iter().map(|v| (*v as i8) as u8).collect();
        for (i, block) in bytes.chunks_exact_mut(34).enumerate() {
            let d = f16::from_f32(0.002 + (i % 3) as f32 * 0.001).to_le_bytes();
            block[0..2].copy_from_slice(&d);
        }
        bytes
    }

    fn dense(matrix: &WeightMatrix) -> Vec<f32> {
        let mut out = vec![0.0; matrix.rows * matrix.cols];
        for (r, row) in out.chunks_exact_mut(matrix.cols).enumerate() {
            matrix.dequantize_row(r, row);
        }
        out
    }

    fn check_kernels_agree(matrix: &WeightMatrix) {
        let tokens = 5;
        let input = values(99, tokens * matrix.cols, 4.0);
        let mut scalar = vec![0.0; tokens * matrix.rows];
        matrix.matmul(KernelKind::Scalar, &input, tokens, &mut scalar);

        // Against a dense f32 product: only activation quantization error remains.
        let weights = dense(matrix);
        for t in 0..tokens {
            for r in 0..matrix.rows {
                let exact: f32 = (0..matrix.cols)
                    .map(|c| weights[r * matrix.cols + c] * input[t * matrix.cols + c])
                    .sum();
                let magnitude: f32 = (0..matrix.cols)
                    .map(|c| (weights[r * matrix.cols + c] * input[t * matrix.cols + c]).abs())
                    .sum();
                let got = scalar[t * matrix.rows + r];
                // Activation rounding is at most half a step of amax/127 per element.
                assert!(
                    (exact - got).abs() <= 0.01 * magnitude + 1e-4,
                    "row {r} token {t}: dense {exact} vs quantized {got}"
                );
            }
        }

        let kind = KernelKind::detect();
        if kind == KernelKind::Scalar {
            eprintln!("no SIMD kernel on this CPU; scalar kernel checked alone");
            return;
        }
        let mut simd = vec![0.0; tokens * matrix.rows];
        matrix.matmul(kind, &input, tokens, &mut simd);
        // Batched (several tokens per weight row) and one-token calls give identical bits,
        // which is what makes batched decoding equal to one-at-a-time decoding.
        for t in 0..tokens {
            let mut one = vec![0.0; matrix.rows];
            matrix.matmul(
                kind,
                &input[t * matrix.cols..(t + 1) * matrix.cols],
                1,
                &mut one,
            );
            assert_eq!(
                one,
                simd[t * matrix.rows..(t + 1) * matrix.rows],
                "token {t}"
            );
        }
        for (i, (a, b)) in scalar.iter().zip(&simd).enumerate() {
            // Same integer sums; only float summation order differs.
            assert!(
                (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                "entry {i}: scalar {a} vs {kind:?} {b}"
            );
        }
    }

    #[test]
    fn q4_1_simd_and_scalar_kernels_agree() {
        let (rows, cols) = (37, 576);
        let matrix = WeightMatrix::from_q4_1_bytes(rows, cols, &q4_1_bytes(rows, cols, 7))
            .expect("valid Q4_1");
        check_kernels_agree(&matrix);
    }

    #[test]
    fn q8_0_simd_and_scalar_kernels_agree() {
        let (rows, cols) = (41, 192);
        let matrix = WeightMatrix::from_q8_0_bytes(rows, cols, &q8_0_bytes(rows, cols, 11))
            .expect("valid Q8_0");
        check_kernels_agree(&matrix);
    }

    #[test]
    fn activation_quantization_matches_llama_cpp_rounding() {
        let mut row = vec![0.0f32; BLOCK];
        row[0] = 127.0;
        row[1] = -63.5;
        row[2] = 0.5;
        let mut block = [BlockQ8_1::default()];
        quantize_row_q8(&row, &mut block);
        assert_eq!(block[0].d, 1.0);
        // Halves round away from zero, as C's roundf does.
        assert_eq!(&block[0].qs[..3], &[127, -64, 1]);
        assert_eq!(block[0].s, 64.0);
    }

    #[test]
    fn wrong_sizes_are_rejected() {
        assert!(WeightMatrix::from_q4_1_bytes(2, 32, &[0u8; 39]).is_err());
        assert!(WeightMatrix::from_q8_0_bytes(1, 31, &[0u8; 34]).is_err());
        assert!(WeightMatrix::from_f32(2, 2, vec![0.0; 3]).is_err());
    }
}
