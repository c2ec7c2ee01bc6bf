//! Quantized weight matrices and their matrix multiplication kernels.
//!
//! Weights keep their GGUF bytes per block (f16 scales, so no more memory traffic than the
//! file itself) but are regrouped at load time: eight rows are interleaved block by block, so
//! that one pass over a group's blocks yields eight outputs at once, one per SIMD lane, with
//! no horizontal reduction per row and the scales of eight rows converted by one F16C
//! instruction. Activations are quantized per row to 8-bit blocks exactly as llama.cpp does
//! (Q8_1 for Q4_1 weights, Q8_0 for Q8_0 weights). The dot products use AVX2/FMA/F16C when the
//! CPU has them; the scalar fallback performs the same integer sums and the same fused
//! multiply-adds in the same order, so both give identical bits.

use half::f16;

use crate::error::{EngineError, Result};
use crate::pool::{DisjointChunks, WorkerPool};

/// Elements per quantization block (Q4_1, Q8_0, Q8_1).
pub(crate) const BLOCK: usize = 32;

/// Rows interleaved in one group (the lanes of an AVX2 f32 vector).
pub(crate) const GROUP: usize = 8;

/// One block (32 columns) of eight Q4_1 rows: `value = d * q + m` with 4-bit `q`.
///
/// `qs[k]` holds the 16 nibble bytes of row `k` then those of row `k + 4` (in GGUF order: low
/// nibbles are elements 0..16, high nibbles 16..32), so one 256-bit load feeds two rows and
/// the reduction of the four pairs lands each row in its own lane. `d` and `m` are the rows'
/// f16 scales, in row order.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
pub(crate) struct GroupQ4_1 {
    qs: [[u8; 32]; 4],
    d: [u16; GROUP],
    m: [u16; GROUP],
}

/// One block (32 columns) of eight Q8_0 rows: `value = d * q` with 8-bit signed `q`.
///
/// `qs[2 * k + h]` holds bytes `16h..16h + 16` of row `k` then the same bytes of row `k + 4`;
/// `d` holds the rows' f16 scales in row order.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(16))]
pub(crate) struct GroupQ8_0 {
    qs: [[i8; 32]; 8],
    d: [u16; GROUP],
}

/// Where row `row` of a group keeps its 16 bytes in a 32-byte pair register: which pair and
/// which half.
fn pair_slot(row: usize) -> (usize, usize) {
    (row % 4, (row / 4) * 16)
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

fn f16_bits_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn f16_to_f32(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
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
    /// x86-64 AVX2 + FMA + F16C intrinsics.
    Avx2,
}

impl KernelKind {
    /// The fastest kernel this CPU supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
            {
                return Self::Avx2;
            }
        }
        Self::Scalar
    }
}

/// The products of one group of eight Q4_1 rows with `N` activation rows: per token, the
/// eight row results in row order.
fn q4_1_group_scalar<const N: usize>(
    weights: &[GroupQ4_1],
    activations: [&[BlockQ8_1]; N],
) -> [[f32; GROUP]; N] {
    let mut out = [[0.0f32; GROUP]; N];
    for (j, acts) in activations.iter().enumerate() {
        for (row, result) in out[j].iter_mut().enumerate() {
            let (pair, half) = pair_slot(row);
            let (mut acc, mut acc_m) = (0.0f32, 0.0f32);
            for (w, a) in weights.iter().zip(acts.iter()) {
                let bytes = &w.qs[pair][half..half + 16];
                let mut sum = 0i32;
                for (i, &byte) in bytes.iter().enumerate() {
                    sum += i32::from(byte & 0x0F) * i32::from(a.qs[i])
                        + i32::from(byte >> 4) * i32::from(a.qs[i + 16]);
                }
                // The same fused steps as the SIMD kernel, in the same order.
                acc = (f16_to_f32(w.d[row]) * a.d).mul_add(sum as f32, acc);
                acc_m = f16_to_f32(w.m[row]).mul_add(a.s, acc_m);
            }
            *result = acc + acc_m;
        }
    }
    out
}

/// As [`q4_1_group_scalar`], for Q8_0 rows.
fn q8_0_group_scalar<const N: usize>(
    weights: &[GroupQ8_0],
    activations: [&[BlockQ8_1]; N],
) -> [[f32; GROUP]; N] {
    let mut out = [[0.0f32; GROUP]; N];
    for (j, acts) in activations.iter().enumerate() {
        for (row, result) in out[j].iter_mut().enumerate() {
            let (pair, half) = pair_slot(row);
            let mut acc = 0.0f32;
            for (w, a) in weights.iter().zip(acts.iter()) {
                let mut sum = 0i32;
                for h in 0..2 {
                    let bytes = &w.qs[2 * pair + h][half..half + 16];
                    for (i, &q) in bytes.iter().enumerate() {
                        sum += i32::from(q) * i32::from(a.qs[16 * h + i]);
                    }
                }
                acc = (f16_to_f32(w.d[row]) * a.d).mul_add(sum as f32, acc);
            }
            *result = acc;
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{BlockQ8_1, GROUP, GroupQ4_1, GroupQ8_0};
    use std::arch::x86_64::*;

    /// The activation block's two 16-byte halves, each copied to both 128-bit lanes (one lane
    /// per row of a pair).
    #[target_feature(enable = "avx2")]
    fn broadcast_halves(a: &BlockQ8_1) -> (__m256i, __m256i) {
        // SAFETY: `a.qs` is 32 readable bytes; both 16-byte loads lie within it and
        // unaligned loads allow any address.
        unsafe {
            (
                _mm256_broadcastsi128_si256(_mm_loadu_si128(a.qs.as_ptr().cast())),
                _mm256_broadcastsi128_si256(_mm_loadu_si128(a.qs.as_ptr().add(16).cast())),
            )
        }
    }

    /// Blocks ahead of the current one to ask the memory system for: the weights stream from
    /// DRAM once per token, and asking early keeps more lines in flight than the hardware
    /// prefetcher alone.
    const PREFETCH_AHEAD: usize = 6;

    /// Prefetches the cache lines of the block `PREFETCH_AHEAD` blocks after `block`.
    #[target_feature(enable = "avx2")]
    fn prefetch_ahead<T>(block: &T) {
        let ahead = std::ptr::from_ref(block)
            .wrapping_add(PREFETCH_AHEAD)
            .cast::<i8>();
        let mut offset = 0;
        while offset < size_of::<T>() {
            // A hint that never faults, whatever the address; `wrapping_add` computes the
            // address without claiming it is in bounds.
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(offset));
            offset += 64;
        }
    }

    /// Eight f16 values to f32.
    #[target_feature(enable = "avx2,f16c")]
    fn load_f16x8(values: &[u16; GROUP]) -> __m256 {
        // SAFETY: `values` is 16 readable bytes; unaligned loads allow any address.
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(values.as_ptr().cast()) })
    }

    /// Per-pair sums (row `k` in the low lane, row `k + 4` in the high lane, four partial
    /// sums each) to one sum per row, in row order.
    #[target_feature(enable = "avx2")]
    fn reduce_pairs(p: [__m256i; 4]) -> __m256i {
        _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]))
    }

    /// See [`super::q4_1_group_scalar`]: the same results, eight rows per vector.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q4_1_group<const N: usize>(
        weights: &[GroupQ4_1],
        activations: [&[BlockQ8_1]; N],
    ) -> [[f32; GROUP]; N] {
        let mask = _mm256_set1_epi8(0x0F);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); N];
        let mut acc_m = [_mm256_setzero_ps(); N];
        for (b, w) in weights.iter().enumerate() {
            prefetch_ahead(w);
            let d = load_f16x8(&w.d);
            let m = load_f16x8(&w.m);
            let mut low = [_mm256_setzero_si256(); 4];
            let mut high = [_mm256_setzero_si256(); 4];
            for k in 0..4 {
                // SAFETY: `w.qs[k]` is 32 bytes at a 32-byte aligned address (the struct is
                // `align(32)` and `qs` comes first).
                let packed = unsafe { _mm256_load_si256(w.qs[k].as_ptr().cast()) };
                low[k] = _mm256_and_si256(packed, mask);
                high[k] = _mm256_and_si256(_mm256_srli_epi16::<4>(packed), mask);
            }
            for j in 0..N {
                let a = &activations[j][b];
                let (a_low, a_high) = broadcast_halves(a);
                let mut pairs = [_mm256_setzero_si256(); 4];
                for k in 0..4 {
                    // Unsigned 4-bit times signed 8-bit: each i16 is at most 4 * 15 * 127.
                    let sum16 = _mm256_add_epi16(
                        _mm256_maddubs_epi16(low[k], a_low),
                        _mm256_maddubs_epi16(high[k], a_high),
                    );
                    pairs[k] = _mm256_madd_epi16(sum16, ones);
                }
                let sums = _mm256_cvtepi32_ps(reduce_pairs(pairs));
                acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(a.d)), sums, acc[j]);
                acc_m[j] = _mm256_fmadd_ps(m, _mm256_set1_ps(a.s), acc_m[j]);
            }
        }
        let mut out = [[0.0f32; GROUP]; N];
        for j in 0..N {
            // SAFETY: `out[j]` is 8 writable f32s; unaligned stores allow any address.
            unsafe { _mm256_storeu_ps(out[j].as_mut_ptr(), _mm256_add_ps(acc[j], acc_m[j])) };
        }
        out
    }

    /// See [`super::q8_0_group_scalar`]: the same results, eight rows per vector.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn q8_0_group<const N: usize>(
        weights: &[GroupQ8_0],
        activations: [&[BlockQ8_1]; N],
    ) -> [[f32; GROUP]; N] {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); N];
        for (b, w) in weights.iter().enumerate() {
            prefetch_ahead(w);
            let d = load_f16x8(&w.d);
            for j in 0..N {
                let a = &activations[j][b];
                let halves = broadcast_halves(a);
                let mut pairs = [_mm256_setzero_si256(); 4];
                for (k, pair) in pairs.iter_mut().enumerate() {
                    let mut sum = _mm256_setzero_si256();
                    for (h, a_half) in [halves.0, halves.1].into_iter().enumerate() {
                        // SAFETY: `w.qs[2k + h]` is 32 readable bytes; unaligned loads allow
                        // any address.
                        let q = unsafe { _mm256_loadu_si256(w.qs[2 * k + h].as_ptr().cast()) };
                        // maddubs needs one unsigned operand: move the weight's sign onto the
                        // activation (|-128| reads as 128 unsigned, so every byte works).
                        let products = _mm256_maddubs_epi16(
                            _mm256_sign_epi8(q, q),
                            _mm256_sign_epi8(a_half, q),
                        );
                        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(products, ones));
                    }
                    *pair = sum;
                }
                let sums = _mm256_cvtepi32_ps(reduce_pairs(pairs));
                acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(a.d)), sums, acc[j]);
            }
        }
        let mut out = [[0.0f32; GROUP]; N];
        for j in 0..N {
            // SAFETY: `out[j]` is 8 writable f32s; unaligned stores allow any address.
            unsafe { _mm256_storeu_ps(out[j].as_mut_ptr(), acc[j]) };
        }
        out
    }
}

/// The stored form of a weight matrix.
#[derive(Debug)]
enum Storage {
    /// Group-major: group `g`'s blocks are `[g * blocks_per_row..(g + 1) * blocks_per_row]`.
    Q4_1(Vec<GroupQ4_1>),
    Q8_0(Vec<GroupQ8_0>),
    /// Any other GGUF type, dequantized at load (row-major).
    F32(Vec<f32>),
}

/// A weight matrix of `rows` outputs by `cols` inputs (GGUF order), stored in groups of
/// [`GROUP`] rows (the last group padded with zero rows).
#[derive(Debug)]
pub(crate) struct WeightMatrix {
    rows: usize,
    cols: usize,
    storage: Storage,
}

/// Activation rows ready for a product: as given (for f32 weights) and quantized to 8-bit
/// blocks (for quantized weights).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Activations<'a> {
    values: &'a [f32],
    blocks: &'a [BlockQ8_1],
    tokens: usize,
    cols: usize,
}

impl<'a> Activations<'a> {
    /// Quantizes `tokens` rows of `cols` values into `scratch` (resized as needed; on the
    /// pool when there are several rows).
    pub(crate) fn quantize(
        pool: &WorkerPool,
        values: &'a [f32],
        tokens: usize,
        cols: usize,
        scratch: &'a mut Vec<BlockQ8_1>,
    ) -> Self {
        debug_assert_eq!(values.len(), tokens * cols);
        let per_row = cols / BLOCK;
        scratch.clear();
        scratch.resize(tokens * per_row, BlockQ8_1::default());
        if tokens == 1 {
            quantize_row_q8(values, scratch);
        } else {
            let pieces = DisjointChunks::new(scratch.as_mut_slice(), per_row);
            pool.for_each_task(tokens, &|t| {
                quantize_row_q8(&values[t * cols..(t + 1) * cols], pieces.claim(t));
            });
        }
        Self {
            values,
            blocks: scratch,
            tokens,
            cols,
        }
    }

    fn row_blocks(&self, token: usize) -> &'a [BlockQ8_1] {
        let per_row = self.cols / BLOCK;
        &self.blocks[token * per_row..(token + 1) * per_row]
    }
}

/// One product of a parallel region: `out[t][r] = sum_c input[t][c] * matrix[r][c]`, `out`
/// row-major with `input.tokens` rows of `matrix.rows()` values.
#[derive(Debug)]
pub(crate) struct Product<'a> {
    /// The weights.
    pub(crate) matrix: &'a WeightMatrix,
    /// The input rows (`matrix.cols()` values each).
    pub(crate) input: Activations<'a>,
    /// Where the results go.
    pub(crate) out: &'a mut [f32],
}

/// Runs several products that share no outputs in one parallel region (fused Q/K/V,
/// gate/up), splitting every matrix into tasks of whole row groups. `scratch` holds results
/// that need reordering (several tokens, or a partial last group); it is reused across calls.
pub(crate) fn run_products(
    pool: &WorkerPool,
    kind: KernelKind,
    products: &mut [Product<'_>],
    scratch: &mut Vec<f32>,
) {
    // Results are computed group-major: group g, token t, lane l at (g * tokens + t) * 8 + l.
    // For one token and whole groups that is the output layout itself.
    let direct = |p: &Product<'_>| p.input.tokens == 1 && p.matrix.rows.is_multiple_of(GROUP);
    let scratch_len: usize = products
        .iter()
        .filter(|p| !direct(p))
        .map(|p| p.matrix.groups() * GROUP * p.input.tokens)
        .sum();
    scratch.clear();
    scratch.resize(scratch_len, 0.0);
    {
        struct Part<'p> {
            matrix: &'p WeightMatrix,
            input: Activations<'p>,
            groups_per_task: usize,
            first_task: usize,
            targets: DisjointChunks<'p, f32>,
        }
        let mut parts = Vec::with_capacity(products.len());
        let mut free_scratch = scratch.as_mut_slice();
        let mut tasks = 0;
        for product in products.iter_mut() {
            let tokens = product.input.tokens;
            let groups = product.matrix.groups();
            // About 64 row-tokens per task: enough work to amortize claiming it, small
            // enough to balance the threads.
            let groups_per_task = (64 / (GROUP * tokens)).max(1);
            let target: &mut [f32] = if direct(product) {
                &mut *product.out
            } else {
                let (mine, rest) =
                    std::mem::take(&mut free_scratch).split_at_mut(groups * GROUP * tokens);
                free_scratch = rest;
                mine
            };
            parts.push(Part {
                matrix: product.matrix,
                input: product.input,
                groups_per_task,
                first_task: tasks,
                targets: DisjointChunks::new(target, groups_per_task * GROUP * tokens),
            });
            tasks += groups.div_ceil(groups_per_task);
        }
        pool.for_each_task(tasks, &|task| {
            let index = parts.partition_point(|p| p.first_task <= task) - 1;
            let part = &parts[index];
            let local = task - part.first_task;
            part.matrix.product_groups(
                kind,
                &part.input,
                local * part.groups_per_task,
                part.targets.claim(local),
            );
        });
    }
    let mut results = scratch.as_slice();
    for product in products.iter_mut().filter(|p| !direct(p)) {
        let (rows, tokens) = (product.matrix.rows, product.input.tokens);
        let (mine, rest) = results.split_at(product.matrix.groups() * GROUP * tokens);
        results = rest;
        for (g, group) in mine.chunks_exact(GROUP * tokens).enumerate() {
            for (t, lanes) in group.chunks_exact(GROUP).enumerate() {
                let first = g * GROUP;
                let count = GROUP.min(rows - first);
                product.out[t * rows + first..t * rows + first + count]
                    .copy_from_slice(&lanes[..count]);
            }
        }
    }
}

/// Calls `kernel` for runs of up to four tokens (the weights of a group are unpacked once
/// per run) and single tokens for the rest; per token the arithmetic is the same either way,
/// so results do not depend on how many tokens are batched.
fn for_token_runs(
    tokens: usize,
    out: &mut [f32],
    mut four: impl FnMut(usize) -> [[f32; GROUP]; 4],
    mut one: impl FnMut(usize) -> [[f32; GROUP]; 1],
) {
    let mut t = 0;
    while t + 4 <= tokens {
        for (j, lanes) in four(t).iter().enumerate() {
            out[(t + j) * GROUP..(t + j + 1) * GROUP].copy_from_slice(lanes);
        }
        t += 4;
    }
    while t < tokens {
        out[t * GROUP..(t + 1) * GROUP].copy_from_slice(&one(t)[0]);
        t += 1;
    }
}

impl WeightMatrix {
    /// Repacks GGUF Q4_1 bytes (blocks of f16 d, f16 m, 16 bytes of nibbles).
    pub(crate) fn from_q4_1_bytes(rows: usize, cols: usize, bytes: &[u8]) -> Result<Self> {
        const SIZE: usize = 20;
        check_size("Q4_1", rows, cols, bytes.len(), SIZE)?;
        let per_row = cols / BLOCK;
        let groups = rows.div_ceil(GROUP);
        let mut storage = vec![
            GroupQ4_1 {
                qs: [[0; 32]; 4],
                d: [0; GROUP],
                m: [0; GROUP],
            };
            groups * per_row
        ];
        for row in 0..rows {
            let (pair, half) = pair_slot(row % GROUP);
            for b in 0..per_row {
                let raw = &bytes[(row * per_row + b) * SIZE..][..SIZE];
                let group = &mut storage[(row / GROUP) * per_row + b];
                group.d[row % GROUP] = f16_bits_at(raw, 0);
                group.m[row % GROUP] = f16_bits_at(raw, 2);
                group.qs[pair][half..half + 16].copy_from_slice(&raw[4..20]);
            }
        }
        Ok(Self {
            rows,
            cols,
            storage: Storage::Q4_1(storage),
        })
    }

    /// Repacks GGUF Q8_0 bytes (blocks of f16 d and 32 signed bytes).
    pub(crate) fn from_q8_0_bytes(rows: usize, cols: usize, bytes: &[u8]) -> Result<Self> {
        const SIZE: usize = 34;
        check_size("Q8_0", rows, cols, bytes.len(), SIZE)?;
        let per_row = cols / BLOCK;
        let groups = rows.div_ceil(GROUP);
        let mut storage = vec![
            GroupQ8_0 {
                qs: [[0; 32]; 8],
                d: [0; GROUP],
            };
            groups * per_row
        ];
        for row in 0..rows {
            let (pair, half) = pair_slot(row % GROUP);
            for b in 0..per_row {
                let raw = &bytes[(row * per_row + b) * SIZE..][..SIZE];
                let group = &mut storage[(row / GROUP) * per_row + b];
                group.d[row % GROUP] = f16_bits_at(raw, 0);
                for h in 0..2 {
                    let source = &raw[2 + 16 * h..2 + 16 * (h + 1)];
                    for (q, &byte) in group.qs[2 * pair + h][half..half + 16]
                        .iter_mut()
                        .zip(source)
                    {
                        *q = byte as i8;
                    }
                }
            }
        }
        Ok(Self {
            rows,
            cols,
            storage: Storage::Q8_0(storage),
        })
    }

    /// Wraps dequantized weights (row-major).
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

    fn groups(&self) -> usize {
        self.rows.div_ceil(GROUP)
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
        let per_row = self.cols / BLOCK;
        let (pair, half) = pair_slot(row % GROUP);
        let lane = row % GROUP;
        let first = (row / GROUP) * per_row;
        match &self.storage {
            Storage::Q4_1(groups) => {
                for (group, chunk) in groups[first..first + per_row]
                    .iter()
                    .zip(out.chunks_exact_mut(BLOCK))
                {
                    let (d, m) = (f16_to_f32(group.d[lane]), f16_to_f32(group.m[lane]));
                    for (j, &byte) in group.qs[pair][half..half + 16].iter().enumerate() {
                        chunk[j] = d * f32::from(byte & 0x0F) + m;
                        chunk[j + 16] = d * f32::from(byte >> 4) + m;
                    }
                }
            }
            Storage::Q8_0(groups) => {
                for (group, chunk) in groups[first..first + per_row]
                    .iter()
                    .zip(out.chunks_exact_mut(BLOCK))
                {
                    let d = f16_to_f32(group.d[lane]);
                    for h in 0..2 {
                        for (v, &q) in chunk[16 * h..16 * (h + 1)]
                            .iter_mut()
                            .zip(&group.qs[2 * pair + h][half..half + 16])
                        {
                            *v = d * f32::from(q);
                        }
                    }
                }
            }
            Storage::F32(data) => {
                out.copy_from_slice(&data[row * self.cols..(row + 1) * self.cols]);
            }
        }
    }

    /// Computes groups `first_group..` (as many as `out` holds) for every token of `input`;
    /// `out` is group-major (`[group][token][lane]`).
    fn product_groups(
        &self,
        kind: KernelKind,
        input: &Activations<'_>,
        first_group: usize,
        out: &mut [f32],
    ) {
        let tokens = input.tokens;
        let per_row = self.cols / BLOCK;
        let act = |t: usize| input.row_blocks(t);
        for (i, out_group) in out.chunks_exact_mut(GROUP * tokens).enumerate() {
            let g = first_group + i;
            match &self.storage {
                Storage::Q4_1(groups) => {
                    let w = &groups[g * per_row..(g + 1) * per_row];
                    match kind {
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: `KernelKind::Avx2` is only produced by `detect` after
                        // checking that the CPU supports AVX2, FMA and F16C (or by tests that
                        // check the same).
                        KernelKind::Avx2 => unsafe {
                            for_token_runs(
                                tokens,
                                out_group,
                                |t| {
                                    avx2::q4_1_group(
                                        w,
                                        [act(t), act(t + 1), act(t + 2), act(t + 3)],
                                    )
                                },
                                |t| avx2::q4_1_group(w, [act(t)]),
                            );
                        },
                        _ => for_token_runs(
                            tokens,
                            out_group,
                            |t| q4_1_group_scalar(w, [act(t), act(t + 1), act(t + 2), act(t + 3)]),
                            |t| q4_1_group_scalar(w, [act(t)]),
                        ),
                    }
                }
                Storage::Q8_0(groups) => {
                    let w = &groups[g * per_row..(g + 1) * per_row];
                    match kind {
                        #[cfg(target_arch = "x86_64")]
                        // SAFETY: as above, `Avx2` implies the CPU supports AVX2, FMA, F16C.
                        KernelKind::Avx2 => unsafe {
                            for_token_runs(
                                tokens,
                                out_group,
                                |t| {
                                    avx2::q8_0_group(
                                        w,
                                        [act(t), act(t + 1), act(t + 2), act(t + 3)],
                                    )
                                },
                                |t| avx2::q8_0_group(w, [act(t)]),
                            );
                        },
                        _ => for_token_runs(
                            tokens,
                            out_group,
                            |t| q8_0_group_scalar(w, [act(t), act(t + 1), act(t + 2), act(t + 3)]),
                            |t| q8_0_group_scalar(w, [act(t)]),
                        ),
                    }
                }
                Storage::F32(data) => {
                    for (t, lanes) in out_group.chunks_exact_mut(GROUP).enumerate() {
                        let x = &input.values[t * self.cols..(t + 1) * self.cols];
                        for (lane, value) in lanes.iter_mut().enumerate() {
                            let r = g * GROUP + lane;
                            *value = if r < self.rows {
                                dot_f32(&data[r * self.cols..(r + 1) * self.cols], x)
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
        }
    }

    /// One product on its own (quantizing `input`): `out[t][r] = sum_c input[t][c] * W[r][c]`.
    #[cfg(test)]
    fn matmul(
        &self,
        pool: &WorkerPool,
        kind: KernelKind,
        input: &[f32],
        tokens: usize,
        out: &mut [f32],
    ) {
        let mut blocks = Vec::new();
        let input = Activations::quantize(pool, input, tokens, self.cols, &mut blocks);
        run_products(
            pool,
            kind,
            &mut [Product {
                matrix: self,
                input,
                out,
            }],
            &mut Vec::new(),
        );
    }
}

/// A dot product in eight independent lanes (which the compiler vectorizes; a plain
/// sequential sum cannot be reordered and runs at one addition per add latency).
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Four dot products of `a` with `b[0..4]` (equal lengths), each in eight lanes: four
/// independent chains of fused multiply-adds, which the compiler maps to vector registers.
pub(crate) fn dot4_f32(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    let mut lanes = [[0.0f32; 8]; 4];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        let x = &a[8 * c..8 * c + 8];
        for (lane, row) in lanes.iter_mut().zip(&b) {
            let y = &row[8 * c..8 * c + 8];
            for i in 0..8 {
                lane[i] = x[i].mul_add(y[i], lane[i]);
            }
        }
    }
    let mut out = [0.0f32; 4];
    for ((sum, lane), row) in out.iter_mut().zip(&lanes).zip(&b) {
        let tail: f32 = a[8 * chunks..]
            .iter()
            .zip(&row[8 * chunks..])
            .map(|(x, y)| x * y)
            .sum();
        *sum = lane.iter().sum::<f32>() + tail;
    }
    out
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
        let pool = WorkerPool::new(2).expect("threads start");
        let tokens = 5;
        let input = values(99, tokens * matrix.cols, 4.0);
        let mut scalar = vec![0.0; tokens * matrix.rows];
        matrix.matmul(&pool, KernelKind::Scalar, &input, tokens, &mut scalar);

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
        matrix.matmul(&pool, kind, &input, tokens, &mut simd);
        // Batched (several tokens per weight group) and one-token calls give identical bits,
        // which is what makes batched decoding equal to one-at-a-time decoding.
        for t in 0..tokens {
            let mut one = vec![0.0; matrix.rows];
            matrix.matmul(
                &pool,
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
        // Same integer sums and the same fused multiply-adds in the same order.
        assert_eq!(scalar, simd, "scalar and {kind:?} kernels differ");
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
    fn regrouped_rows_dequantize_like_the_gguf_blocks() {
        let (rows, cols) = (13, 64);
        let bytes = q4_1_bytes(rows, cols, 21);
        let matrix = WeightMatrix::from_q4_1_bytes(rows, cols, &bytes).expect("valid Q4_1");
        let mut row_values = vec![0.0; cols];
        for (r, row_blocks) in bytes.chunks_exact(20 * cols / BLOCK).enumerate() {
            matrix.dequantize_row(r, &mut row_values);
            for (b, raw) in row_blocks.chunks_exact(20).enumerate() {
                let d = f16_to_f32(f16_bits_at(raw, 0));
                let m = f16_to_f32(f16_bits_at(raw, 2));
                for i in 0..16 {
                    assert_eq!(
                        row_values[b * BLOCK + i],
                        d * f32::from(raw[4 + i] & 0x0F) + m
                    );
                    assert_eq!(
                        row_values[b * BLOCK + 16 + i],
                        d * f32::from(raw[4 + i] >> 4) + m
                    );
                }
            }
        }
        let bytes = q8_0_bytes(rows, cols, 22);
        let matrix = WeightMatrix::from_q8_0_bytes(rows, cols, &bytes).expect("valid Q8_0");
        for (r, row_blocks) in bytes.chunks_exact(34 * cols / BLOCK).enumerate() {
            matrix.dequantize_row(r, &mut row_values);
            for (b, raw) in row_blocks.chunks_exact(34).enumerate() {
                let d = f16_to_f32(f16_bits_at(raw, 0));
                for i in 0..BLOCK {
                    assert_eq!(row_values[b * BLOCK + i], d * f32::from(raw[2 + i] as i8));
                }
            }
        }
    }

    #[test]
    fn q8_0_kernel_handles_minus_128() {
        // -128 is a valid Q8_0 byte even though llama.cpp's quantizer never writes it.
        let (rows, cols) = (8, 64);
        let mut bytes = q8_0_bytes(rows, cols, 5);
        for block in bytes.chunks_exact_mut(34) {
            block[2] = 0x80;
            block[20] = 0x80;
        }
        let matrix = WeightMatrix::from_q8_0_bytes(rows, cols, &bytes).expect("valid Q8_0");
        check_kernels_agree(&matrix);
    }

    #[test]
    fn f32_weights_multiply_exactly() {
        let (rows, cols) = (11, 64);
        let data = values(3, rows * cols, 2.0);
        let matrix = WeightMatrix::from_f32(rows, cols, data.clone()).expect("sizes match");
        let pool = WorkerPool::new(2).expect("threads start");
        let tokens = 3;
        let input = values(4, tokens * cols, 2.0);
        let mut out = vec![0.0; tokens * rows];
        matrix.matmul(&pool, KernelKind::detect(), &input, tokens, &mut out);
        for t in 0..tokens {
            for r in 0..rows {
                let expected = dot_f32(&data[r * cols..(r + 1) * cols], &input[t * cols..][..cols]);
                assert_eq!(out[t * rows + r], expected, "row {r} token {t}");
            }
        }
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
