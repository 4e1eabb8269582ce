//! The keys of every implementation for the thread axis: a module per
//! implementation (`inline_patch`, `trampoline`, …) with a 1-site key, 100
//! keys of one site each, their sites and a batch update; the macro is
//! invoked in the parent module for the list of implementations, so that
//! each module's path stays `threads::<implementation>`.

macro_rules! thread_impl {
    ($(($m:ident, $krate:path, $name:literal))*) => {$(
        /// Keys of one implementation.
        pub mod $m {
            use $krate as sc;
            use super::AddFn;
            sc::define_static_call!(pub static T1: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B00: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B01: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B02: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B03: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B04: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B05: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B06: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B07: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B08: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B09: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B10: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B11: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B12: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B13: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B14: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B15: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B16: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B17: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B18: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B19: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B20: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B21: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B22: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B23: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B24: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B25: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B26: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B27: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B28: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B29: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B30: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B31: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B32: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B33: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B34: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B35: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B36: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B37: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B38: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B39: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B40: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B41: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B42: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B43: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B44: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B45: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B46: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B47: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B48: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B49: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B50: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B51: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B52: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B53: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B54: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B55: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B56: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B57: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B58: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B59: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B60: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B61: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B62: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B63: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B64: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B65: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B66: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B67: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B68: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B69: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B70: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B71: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B72: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B73: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B74: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B75: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B76: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B77: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B78: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B79: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B80: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B81: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B82: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B83: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B84: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B85: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B86: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B87: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B88: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B89: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B90: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B91: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B92: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B93: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B94: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B95: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B96: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B97: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B98: extern "C" fn(u64) -> u64 = crate::targets::add1;);
            sc::define_static_call!(pub static B99: extern "C" fn(u64) -> u64 = crate::targets::add1;);

            /// The one site of `T1`.
            #[inline(never)]
            pub fn call_t1(x: u64) -> u64 {
                sc::static_call!(T1(x))
            }

            /// The one site of key `i`.
            #[inline(never)]
            pub fn call_key(i: usize, x: u64) -> u64 {
                match i {
                    0 => sc::static_call!(B00(x)),
                    1 => sc::static_call!(B01(x)),
                    2 => sc::static_call!(B02(x)),
                    3 => sc::static_call!(B03(x)),
                    4 => sc::static_call!(B04(x)),
                    5 => sc::static_call!(B05(x)),
                    6 => sc::static_call!(B06(x)),
                    7 => sc::static_call!(B07(x)),
                    8 => sc::static_call!(B08(x)),
                    9 => sc::static_call!(B09(x)),
                    10 => sc::static_call!(B10(x)),
                    11 => sc::static_call!(B11(x)),
                    12 => sc::static_call!(B12(x)),
                    13 => sc::static_call!(B13(x)),
                    14 => sc::static_call!(B14(x)),
                    15 => sc::static_call!(B15(x)),
                    16 => sc::static_call!(B16(x)),
                    17 => sc::static_call!(B17(x)),
                    18 => sc::static_call!(B18(x)),
                    19 => sc::static_call!(B19(x)),
                    20 => sc::static_call!(B20(x)),
                    21 => sc::static_call!(B21(x)),
                    22 => sc::static_call!(B22(x)),
                    23 => sc::static_call!(B23(x)),
                    24 => sc::static_call!(B24(x)),
                    25 => sc::static_call!(B25(x)),
                    26 => sc::static_call!(B26(x)),
                    27 => sc::static_call!(B27(x)),
                    28 => sc::static_call!(B28(x)),
                    29 => sc::static_call!(B29(x)),
                    30 => sc::static_call!(B30(x)),
                    31 => sc::static_call!(B31(x)),
                    32 => sc::static_call!(B32(x)),
                    33 => sc::static_call!(B33(x)),
                    34 => sc::static_call!(B34(x)),
                    35 => sc::static_call!(B35(x)),
                    36 => sc::static_call!(B36(x)),
                    37 => sc::static_call!(B37(x)),
                    38 => sc::static_call!(B38(x)),
                    39 => sc::static_call!(B39(x)),
                    40 => sc::static_call!(B40(x)),
                    41 => sc::static_call!(B41(x)),
                    42 => sc::static_call!(B42(x)),
                    43 => sc::static_call!(B43(x)),
                    44 => sc::static_call!(B44(x)),
                    45 => sc::static_call!(B45(x)),
                    46 => sc::static_call!(B46(x)),
                    47 => sc::static_call!(B47(x)),
                    48 => sc::static_call!(B48(x)),
                    49 => sc::static_call!(B49(x)),
                    50 => sc::static_call!(B50(x)),
                    51 => sc::static_call!(B51(x)),
                    52 => sc::static_call!(B52(x)),
                    53 => sc::static_call!(B53(x)),
                    54 => sc::static_call!(B54(x)),
                    55 => sc::static_call!(B55(x)),
                    56 => sc::static_call!(B56(x)),
                    57 => sc::static_call!(B57(x)),
                    58 => sc::static_call!(B58(x)),
                    59 => sc::static_call!(B59(x)),
                    60 => sc::static_call!(B60(x)),
                    61 => sc::static_call!(B61(x)),
                    62 => sc::static_call!(B62(x)),
                    63 => sc::static_call!(B63(x)),
                    64 => sc::static_call!(B64(x)),
                    65 => sc::static_call!(B65(x)),
                    66 => sc::static_call!(B66(x)),
                    67 => sc::static_call!(B67(x)),
                    68 => sc::static_call!(B68(x)),
                    69 => sc::static_call!(B69(x)),
                    70 => sc::static_call!(B70(x)),
                    71 => sc::static_call!(B71(x)),
                    72 => sc::static_call!(B72(x)),
                    73 => sc::static_call!(B73(x)),
                    74 => sc::static_call!(B74(x)),
                    75 => sc::static_call!(B75(x)),
                    76 => sc::static_call!(B76(x)),
                    77 => sc::static_call!(B77(x)),
                    78 => sc::static_call!(B78(x)),
                    79 => sc::static_call!(B79(x)),
                    80 => sc::static_call!(B80(x)),
                    81 => sc::static_call!(B81(x)),
                    82 => sc::static_call!(B82(x)),
                    83 => sc::static_call!(B83(x)),
                    84 => sc::static_call!(B84(x)),
                    85 => sc::static_call!(B85(x)),
                    86 => sc::static_call!(B86(x)),
                    87 => sc::static_call!(B87(x)),
                    88 => sc::static_call!(B88(x)),
                    89 => sc::static_call!(B89(x)),
                    90 => sc::static_call!(B90(x)),
                    91 => sc::static_call!(B91(x)),
                    92 => sc::static_call!(B92(x)),
                    93 => sc::static_call!(B93(x)),
                    94 => sc::static_call!(B94(x)),
                    95 => sc::static_call!(B95(x)),
                    96 => sc::static_call!(B96(x)),
                    97 => sc::static_call!(B97(x)),
                    98 => sc::static_call!(B98(x)),
                    _ => sc::static_call!(B99(x)),
                }
            }

            fn batch(
                keys: &[&'static sc::StaticCall<AddFn>],
                f: AddFn,
            ) -> static_call_core::Result<()> {
                sc::batch(|b| {
                    for k in keys {
                        b.update(k, f)?;
                    }
                    Ok(())
                })
            }

            /// The implementation.
            pub static IMPL: super::ThreadImpl = super::ThreadImpl {
                name: $name,
                init: sc::init,
                registry: &sc::__private::REGISTRY,
                thunk: None,
                t1: &T1,
                call_t1,
                keys: [&B00, &B01, &B02, &B03, &B04, &B05, &B06, &B07, &B08, &B09, &B10, &B11, &B12, &B13, &B14, &B15, &B16, &B17, &B18, &B19, &B20, &B21, &B22, &B23, &B24, &B25, &B26, &B27, &B28, &B29, &B30, &B31, &B32, &B33, &B34, &B35, &B36, &B37, &B38, &B39, &B40, &B41, &B42, &B43, &B44, &B45, &B46, &B47, &B48, &B49, &B50, &B51, &B52, &B53, &B54, &B55, &B56, &B57, &B58, &B59, &B60, &B61, &B62, &B63, &B64, &B65, &B66, &B67, &B68, &B69, &B70, &B71, &B72, &B73, &B74, &B75, &B76, &B77, &B78, &B79, &B80, &B81, &B82, &B83, &B84, &B85, &B86, &B87, &B88, &B89, &B90, &B91, &B92, &B93, &B94, &B95, &B96, &B97, &B98, &B99],
                call_key,
                batch,
            };

            /// The retpoline thunk, for the proof.
            pub fn thunk() -> Option<usize> {
                sc::__private::REGISTRY.thunk()
            }
        }
    )*};
}
pub(super) use thread_impl;
