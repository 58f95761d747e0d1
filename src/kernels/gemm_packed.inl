/// \file
/// \brief GEMM rung 3, cache blocking: the five loops of the packed (Goto/BLIS) path.
///
/// Part of the shared SIMD GEMM (see gemm_kernel.inl, which includes this file). A reader learns
/// here how a large product is cut so that every float is fetched from memory once and used many
/// times. From the outside in:
///
/// 1. NC columns of B at a time — a packed KC×NC block of B (≈ 6 MB) lives in L3;
/// 2. KC rows of op(B) (= columns of op(A)) at a time — the sum over k in pieces;
/// 3. MC rows of A at a time — a packed MC×KC block of A lives in L2;
/// 4. NR columns at a time — one KC×NR panel of B stays in L1 while ...
/// 5. ... the MR-row panels of A stream past it, one micro-kernel call per MR×NR tile of C.
///
/// The sizes come from each ISA's traits (gemm_avx2.cpp, gemm_avx512.cpp, gemm_neon.cpp), with the
/// reasons.
// NOLINTBEGIN(misc-definitions-in-headers): an implementation file included once per ISA file.
namespace qkv::detail {
namespace {

// Loops 4 and 5: every MR×NR tile of one packed MC×KC block of A times one packed KC×NC
// block of B. The NR loop is outside, so an NR-column panel of B stays in L1 while the
// panels of A stream past it from L2.
// `epilogue` is the caller's only on the last KC block (the tiles are final then), else none.
template <class Isa>
void macro_kernel(const float* a_pack, const float* b_pack, i64 mc, i64 nc, i64 kc, float* c, i64 ldc,
                  float alpha, float beta, const float* bias, const kernels::GemmEpilogue& epilogue) {
    constexpr i64 kMr = kMR<Isa>, kNr = kNR<Isa>;
    for (i64 jr = 0; jr < nc; jr += kNr) {
        for (i64 ir = 0; ir < mc; ir += kMr) {
            const Tile t = make_tile(c, ldc, ir, jr, imin(kMr, mc - ir), imin(kNr, nc - jr), alpha, beta, bias);
            micro_tile<Isa, true>(kc, a_pack + ir * kc, nullptr, kMr, b_pack + jr * kc, kNr, t);
            finish_tile(epilogue, t);
        }
    }
}

/// The blocks of the packed path for one problem, and the scratch they need.
struct PackedBlocks {
    i64 kc;             // rows of op(B) per block: KC balanced over K (see balanced_block)
    i64 mc;             // rows of A per block: MC balanced over M, in whole MR panels
    i64 a_pack_floats;  // one packed MC×KC block of A
    i64 b_pack_floats;  // one packed KC×NC block of B
};

// The packed A block comes first in the scratch buffer; rounding its size up to 16 floats
// keeps the B block that follows on a 64-byte boundary (the aligned stores in pack_b need
// 32 bytes with AVX2, 64 with AVX-512).
template <class Isa>
PackedBlocks packed_blocks(const GemmF32& g) {
    const i64 kc = balanced_block(g.K, Isa::kKC, 1);
    const i64 mc = balanced_block(g.M, Isa::kMC, kMR<Isa>);
    return {kc, mc, round_up(mc * kc, 16), kc * round_up(imin(Isa::kNC, g.N), kNR<Isa>)};
}

template <class Isa>
i64 packed_scratch_floats(const GemmF32& g) {
    const PackedBlocks bs = packed_blocks<Isa>(g);
    return bs.a_pack_floats + bs.b_pack_floats;
}

// Loops 1-3: NC columns of B at a time (L3), KC of the inner dimension at a time (L1 panels),
// MC rows of A at a time (L2). Only the first KC block applies the caller's beta (or bias);
// later blocks add to what the first one wrote (beta = 1).
template <class Isa>
void gemm_packed(const GemmF32& g, float* scratch) {
    const PackedBlocks bs = packed_blocks<Isa>(g);
    float* a_pack = scratch;
    float* b_pack = scratch + bs.a_pack_floats;
    for (i64 jc = 0; jc < g.N; jc += Isa::kNC) {
        const i64 nc = imin(Isa::kNC, g.N - jc);
        for (i64 pc = 0; pc < g.K; pc += bs.kc) {
            const i64 kc = imin(bs.kc, g.K - pc);
            pack_b<Isa>(g, pc, kc, jc, nc, b_pack);
            const float beta = pc == 0 ? g.beta : 1.0f;
            const float* bias = pc == 0 && g.bias != nullptr ? g.bias + jc : nullptr;
            const kernels::GemmEpilogue epilogue = pc + kc == g.K ? g.epilogue : kernels::GemmEpilogue{};
            for (i64 ic = 0; ic < g.M; ic += bs.mc) {
                const i64 mc = imin(bs.mc, g.M - ic);
                pack_a<Isa>(g, ic, mc, pc, kc, a_pack);
                macro_kernel<Isa>(a_pack, b_pack, mc, nc, kc, g.C + ic * g.ldc + jc, g.ldc, g.alpha, beta, bias,
                                  epilogue);
            }
        }
    }
}

}  // namespace
}  // namespace qkv::detail
// NOLINTEND(misc-definitions-in-headers)
