//! Macros shared by the implementation crates. Users call the macros of an
//! implementation crate, which forward here with that crate's registry and
//! section names.

/// Calls a static call: `static_call!(KEY(args…))`.
///
/// `KEY` is a path to a key defined with an implementation's
/// `define_static_call!`. Arguments are checked against the key's
/// signature at compile time. Every expansion (and every inlined copy of
/// it) is one call site in the site table.
#[macro_export]
macro_rules! static_call {
    ($($key:ident)::+ ( $($arg:expr),* $(,)? )) => {
        $($key)::+::__call($($arg),*)
    };
}

/// Calls a conditional static call: like [`static_call!`] for a key whose
/// function returns `()`. When the key's target is none the call does
/// nothing.
#[macro_export]
macro_rules! static_call_cond {
    ($($key:ident)::+ ( $($arg:expr),* $(,)? )) => {{
        let () = $($key)::+::__call($($arg),*);
    }};
}

/// Generates the `__call` function of a key: moves each argument into its
/// C-ABI register, runs the site's assembly, and converts `rax` back.
#[doc(hidden)]
#[macro_export]
macro_rules! __static_call_fn {
    ({ $($asm:tt)* } ($($arg:ty),*) $(-> $ret:ty)?) => {
        $crate::__static_call_fn!(@zip { $($asm)* } []
            [$($arg,)*]
            [(a0 "rdi") (a1 "rsi") (a2 "rdx") (a3 "rcx") (a4 "r8") (a5 "r9")]
            $(-> $ret)?);
    };
    (@zip $asm:tt [$($done:tt)*] [$t:ty, $($rest:ty,)*]
        [($n:ident $r:tt) $($regs:tt)*] $(-> $ret:ty)?) => {
        $crate::__static_call_fn!(@zip $asm [$($done)* ($n $r $t)] [$($rest,)*] [$($regs)*]
            $(-> $ret)?);
    };
    (@zip $asm:tt [$($done:tt)*] [$t:ty, $($rest:ty,)*] [] $(-> $ret:ty)?) => {
        ::core::compile_error!("a static call takes at most six arguments");
    };
    (@zip { $($asm:tt)* } [$(($n:ident $r:tt $t:ty))*] [] [$($regs:tt)*] -> $ret:ty) => {
        #[doc(hidden)]
        #[inline(always)]
        pub fn __call($($n: $t),*) -> $ret {
            let raw: u64;
            // SAFETY: the site calls this key's trampoline (or, once
            // patched, its current target), an `extern "C"` function of
            // exactly this signature; arguments are in their C-ABI
            // registers, every caller-saved register is declared clobbered,
            // and the stack is ABI-aligned (no `nostack`).
            unsafe {
                ::core::arch::asm!($($asm)* $(in($r) $crate::Arg::into_reg($n),)*
                    lateout("rax") raw, clobber_abi("C"));
            }
            // SAFETY: the target returned a `$ret` in rax.
            unsafe { <$ret as $crate::Ret>::from_reg(raw) }
        }
    };
    (@zip { $($asm:tt)* } [$(($n:ident $r:tt $t:ty))*] [] [$($regs:tt)*]) => {
        #[doc(hidden)]
        #[inline(always)]
        pub fn __call($($n: $t),*) {
            // SAFETY: as above; nothing is returned.
            unsafe {
                ::core::arch::asm!($($asm)* $(in($r) $crate::Arg::into_reg($n),)*
                    clobber_abi("C"));
            }
        }
    };
}

/// The site-table entry every call site emits (after its label `2:`).
#[doc(hidden)]
#[macro_export]
macro_rules! __static_call_entry {
    ($sec:literal) => {
        $crate::__static_call_entry!($sec, "{key}")
    };
    // `$key_field`: the assembler expression the key field is relative to.
    ($sec:literal, $key_field:literal) => {
        ::core::concat!(
            ".pushsection ",
            $sec,
            ",\"awR\",@progbits\n",
            ".balign 4\n",
            "3:\n",
            ".long 2b - 3b\n",
            ".long ",
            $key_field,
            " - 3b\n",
            ".popsection"
        )
    };
}

/// Refuses, at compile time, a default target that is not a function item.
///
/// The trampoline is assembled as `jmp <default>` with the default as a
/// symbol: for a `static` or `const` holding a function pointer that would
/// be a jump into data. Function items are zero-sized, function pointers
/// are not, so the check is their size.
#[doc(hidden)]
#[macro_export]
macro_rules! __static_call_require_fn_item {
    ($default:path) => {
        const _: () = ::core::assert!(
            ::core::mem::size_of_val(&$default) == 0,
            "the default target of a static call must be the path of a function \
             (a `static` or `const` holding a function pointer is not accepted)"
        );
    };
}

/// Defines a key for the inline-patch and trampoline implementations: the
/// key static, its trampoline and its call function.
#[doc(hidden)]
#[macro_export]
macro_rules! __static_call_define_patched {
    ([$($cfg:tt)*] $(#[$m:meta])* $vis:vis static $name:ident : fn $($rest:tt)*) => {
        ::core::compile_error!(
            "a static call's signature is an `extern \"C\" fn` type: write `extern \"C\" fn(…)`, not `fn(…)`"
        );
    };
    ([$reg:path, $sec:literal]
     $(#[$m:meta])* $vis:vis static $name:ident : extern "C" fn($($arg:ty),* $(,)?) $(-> $ret:ty)? = None;) => {
        const _: fn() = $crate::__require_unit_return::<extern "C" fn($($arg),*) $(-> $ret)?>;
        $crate::__static_call_define_patched! {
            @emit [$reg, $sec] [$(#[$m])*] $vis $name ($($arg),*) [$($ret)?]
            [::core::ptr::null()]
            // The slot starts as `ret` (no target).
            { ".byte 0xc3, 0xcc, 0xcc, 0xcc, 0xcc", } {}
        }
    };
    ([$reg:path, $sec:literal]
     $(#[$m:meta])* $vis:vis static $name:ident : extern "C" fn($($arg:ty),* $(,)?) $(-> $ret:ty)? = $default:path;) => {
        $crate::__static_call_require_fn_item!($default);
        $crate::__static_call_define_patched! {
            @emit [$reg, $sec] [$(#[$m])*] $vis $name ($($arg),*) [$($ret)?]
            [{
                // A default of another signature is refused here, at the
                // caller's own token.
                let default: extern "C" fn($($arg),*) $(-> $ret)? = $default;
                default as *const u8
            }]
            // The slot starts as `jmp $default`.
            { ".byte 0xe9", ".long {target} - . - 4", } { target = sym $default, }
        }
    };
    (@emit [$reg:path, $sec:literal] [$(#[$m:meta])*] $vis:vis $name:ident ($($arg:ty),*) [$($ret:ty)?]
     [$func:expr] { $($slot:tt)* } { $($slot_ops:tt)* }) => {
        $(#[$m])*
        $vis static $name: $crate::StaticCall<extern "C" fn($($arg),*) $(-> $ret)?> =
            // SAFETY: `$name::__tramp` is this key's trampoline, and its slot
            // starts as the form for `$func` (a jump to it, or `ret` for null).
            unsafe { $crate::StaticCall::__new(&$reg, $name::__tramp as *const u8, $func) };

        // The key's code lives on a type of the same name (types and
        // statics have separate namespaces), not in a module: the items of
        // an `impl` resolve names where the key is defined, so a key
        // defined inside a function names itself, never a key of the same
        // name in the enclosing module.
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        $vis struct $name {}

        impl $name {
            #[doc(hidden)]
            #[unsafe(naked)]
            pub extern "C" fn __tramp() {
                ::core::arch::naked_asm!(
                    $($slot)*
                    ".byte 0x0f, 0xb9, 0xcc",
                    ".long {key} - .",
                    $($slot_ops)*
                    key = sym $name,
                )
            }
            $crate::__static_call_fn! {
                { "2:", "call {tramp}", $crate::__static_call_entry!($sec),
                  tramp = sym $name::__tramp, key = sym $name, }
                ($($arg),*) $(-> $ret)?
            }
        }
    };
}

/// Defines a key for a design without a trampoline (the indirect
/// implementation, and any design whose update is one store to the key's
/// function pointer): the key static and a call function whose site
/// loads the pointer and calls it.
///
/// `[REGISTRY, "section", thunk]`: the indirect implementation's site,
/// `mov rax, [rip + key]; 2: call thunk`. `[REGISTRY] { site… }`: any
/// other site, written as `asm!` templates that mention `{key}`, label
/// their site `2:` and end with the site-table entry
/// ([`__static_call_entry!`]) — see docs/IMPLEMENTING.md.
#[doc(hidden)]
#[macro_export]
macro_rules! __static_call_define_indirect {
    ([$($cfg:tt)*] $(#[$m:meta])* $vis:vis static $name:ident : fn $($rest:tt)*) => {
        ::core::compile_error!(
            "a static call's signature is an `extern \"C\" fn` type: write `extern \"C\" fn(…)`, not `fn(…)`"
        );
    };
    ([$reg:path] { $($site:tt)* } $(#[$m:meta])* $vis:vis static $name:ident : fn $($rest:tt)*) => {
        ::core::compile_error!(
            "a static call's signature is an `extern \"C\" fn` type: write `extern \"C\" fn(…)`, not `fn(…)`"
        );
    };
    ([$reg:path, $sec:literal, $thunk:path] $($decl:tt)*) => {
        $crate::__static_call_define_indirect! {
            [$reg] { "mov rax, qword ptr [rip + {key}]", "2:", "call {thunk}",
                     $crate::__static_call_entry!($sec), thunk = sym $thunk, }
            $($decl)*
        }
    };
    ([$reg:path] { $($site:tt)* }
     $(#[$m:meta])* $vis:vis static $name:ident : extern "C" fn($($arg:ty),* $(,)?) $(-> $ret:ty)? = None;) => {
        $(#[$m])*
        $vis static $name: $crate::StaticCall<extern "C" fn($($arg),*) $(-> $ret)?> =
            // SAFETY: no trampoline; the none target is the shared ret stub.
            unsafe {
                $crate::StaticCall::__new(&$reg, ::core::ptr::null(),
                    $crate::ret_stub as extern "C" fn() as *const u8)
            };
        const _: fn() = $crate::__require_unit_return::<extern "C" fn($($arg),*) $(-> $ret)?>;
        $crate::__static_call_define_indirect!(@call $vis $name { $($site)* } ($($arg),*) $(-> $ret)?);
    };
    ([$reg:path] { $($site:tt)* }
     $(#[$m:meta])* $vis:vis static $name:ident : extern "C" fn($($arg:ty),* $(,)?) $(-> $ret:ty)? = $default:path;) => {
        $crate::__static_call_require_fn_item!($default);
        $(#[$m])*
        $vis static $name: $crate::StaticCall<extern "C" fn($($arg),*) $(-> $ret)?> =
            // SAFETY: no trampoline; the target pointer starts at `$default`.
            unsafe {
                $crate::StaticCall::__new(&$reg, ::core::ptr::null(),
                    {
                        // A default of another signature is refused here,
                        // at the caller's own token.
                        let default: extern "C" fn($($arg),*) $(-> $ret)? = $default;
                        default as *const u8
                    })
            };
        $crate::__static_call_define_indirect!(@call $vis $name { $($site)* } ($($arg),*) $(-> $ret)?);
    };
    (@call $vis:vis $name:ident { $($site:tt)* } ($($arg:ty),*) $(-> $ret:ty)?) => {
        // As for the other implementations: the call function lives on a
        // type of the key's name, so that it resolves the key where the
        // key is defined.
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        $vis struct $name {}

        impl $name {
            $crate::__static_call_fn! {
                { $($site)* key = sym $name, }
                ($($arg),*) $(-> $ret)?
            }
        }
    };
}

/// Defines the accessor of the main image's section bounds for an
/// implementation crate, with weak references so that a program without
/// sites (or without init text) still links.
#[doc(hidden)]
#[macro_export]
macro_rules! __static_call_image {
    ($vis:vis $fn:ident, $sites:literal, $init:literal) => {

        /// This image's site table and init text.
        $vis fn $fn() -> $crate::ImageSections {
            let (a, b, c, d): (usize, usize, usize, usize);
            // SAFETY: loads four addresses from the GOT; undefined weak
            // symbols read as 0.
            unsafe {
                ::core::arch::asm!(
                    // Weak: a program without sites still links. Hidden: a
                    // shared object always finds its own table, never one
                    // an executable exports under the same name. The
                    // directives live here, with the references, so that
                    // they travel when the optimiser inlines this accessor
                    // into another crate (a cdylib); a module without init
                    // text would otherwise fail to load with an undefined
                    // `__start_` symbol.
                    ::core::concat!(".weak __start_", $sites),
                    ::core::concat!(".hidden __start_", $sites),
                    ::core::concat!(".weak __stop_", $sites),
                    ::core::concat!(".hidden __stop_", $sites),
                    ::core::concat!(".weak __start_", $init),
                    ::core::concat!(".hidden __start_", $init),
                    ::core::concat!(".weak __stop_", $init),
                    ::core::concat!(".hidden __stop_", $init),
                    // Page-align the init text (whole pages are released).
                    // The flags are exactly those rustc gives a function
                    // placed there by `init_text!` (`#[link_section]`:
                    // "ax"): the two declarations meet in one object
                    // whenever the optimiser puts this accessor and an init
                    // function in one codegen unit, and the assembler
                    // refuses a section declared twice with different
                    // flags. Without the retain flag, a no-op relocation
                    // from this (live) code keeps the piece through
                    // `--gc-sections`.
                    ::core::concat!(".pushsection ", $init, ",\"ax\",@progbits"),
                    ".balign 4096",
                    "5:",
                    ".popsection",
                    ".reloc ., R_X86_64_NONE, 5b",
                    ::core::concat!("mov {a}, qword ptr [rip + __start_", $sites, "@GOTPCREL]"),
                    ::core::concat!("mov {b}, qword ptr [rip + __stop_", $sites, "@GOTPCREL]"),
                    ::core::concat!("mov {c}, qword ptr [rip + __start_", $init, "@GOTPCREL]"),
                    ::core::concat!("mov {d}, qword ptr [rip + __stop_", $init, "@GOTPCREL]"),
                    a = out(reg) a, b = out(reg) b, c = out(reg) c, d = out(reg) d,
                    options(nostack, pure, nomem, preserves_flags)
                );
            }
            $crate::ImageSections { sites: (a, b), init: (c, d) }
        }
    };
}

/// Puts a function in an implementation's init text.
#[doc(hidden)]
#[macro_export]
macro_rules! __static_call_init_text {
    ($sec:literal; $(#[$m:meta])* $vis:vis fn $name:ident ($($params:tt)*) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        #[unsafe(link_section = $sec)]
        #[inline(never)]
        $vis fn $name($($params)*) $(-> $ret)? $body
    };
}

/// The site-table entry of a module's call site: the key field points at
/// the per-(key, object) key slot (flag `KEYREF` = 4).
#[doc(hidden)]
#[macro_export]
macro_rules! __static_call_ref_entry {
    ($sec:literal) => {
        ::core::concat!(
            $crate::__static_call_entry!($sec, "__sc_ref_{key} + 4"),
            "\n",
            // One slot per (key, object): a COMDAT group, hidden, so every
            // object has its own, filled by the dynamic linker. `.ifndef`
            // emits it once per assembly unit; COMDAT merges the units.
            ".ifndef __sc_ref_{key}\n",
            ".pushsection .data.__sc_ref_{key},\"awG\",@progbits,__sc_ref_{key},comdat\n",
            ".weak __sc_ref_{key}\n",
            ".hidden __sc_ref_{key}\n",
            ".balign 8\n",
            "__sc_ref_{key}:\n",
            ".quad {key}\n",
            ".popsection\n",
            ".endif"
        )
    };
}

/// The near stub of a module's call sites: one per (key, object), it loads
/// the key's address from the slot and jumps through the key's trampoline
/// field. It never changes.
#[doc(hidden)]
#[macro_export]
macro_rules! __static_call_stub {
    () => {
        ::core::concat!(
            ".ifndef __sc_stub_{key}\n",
            ".pushsection .text.__sc_stub_{key},\"axG\",@progbits,__sc_stub_{key},comdat\n",
            ".weak __sc_stub_{key}\n",
            ".hidden __sc_stub_{key}\n",
            "__sc_stub_{key}:\n",
            "mov r11, qword ptr [rip + __sc_ref_{key}]\n",
            "jmp qword ptr [r11 + 8]\n",
            ".popsection\n",
            ".endif"
        )
    };
}

/// Declares, in a module (a `cdylib`), a key defined in the main program.
#[doc(hidden)]
#[macro_export]
macro_rules! __static_call_declare {
    (patched [$sec:literal] $($decl:tt)*) => {
        $crate::__static_call_declare! {
            @emit { "2:", "call __sc_stub_{key}", $crate::__static_call_ref_entry!($sec),
                    $crate::__static_call_stub!(), }
            $($decl)*
        }
    };
    (indirect [$sec:literal, $thunk:path] $($decl:tt)*) => {
        $crate::__static_call_declare! {
            @emit { "mov rax, qword ptr [rip + __sc_ref_{key}]", "mov rax, qword ptr [rax]",
                    "2:", "call {thunk}", $crate::__static_call_ref_entry!($sec),
                    thunk = sym $thunk, }
            $($decl)*
        }
    };
    // `$site`: the call site's templates (and operands other than `key`).
    (@emit { $($site:tt)* }
     $(#[$m:meta])* $vis:vis static $name:ident : extern "C" fn($($arg:ty),* $(,)?) $(-> $ret:ty)?;) => {
        unsafe extern "Rust" {
            $(#[$m])*
            $vis static $name: $crate::CallOnly<extern "C" fn($($arg),*) $(-> $ret)?>;
        }
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        $vis struct $name {}

        impl $name {
            $crate::__static_call_fn! {
                { $($site)* key = sym $name, }
                ($($arg),*) $(-> $ret)?
            }
        }
    };
}

/// Exports a module's descriptor function.
#[doc(hidden)]
#[macro_export]
macro_rules! __static_call_module {
    ($sym:ident, $image:path, $init:expr) => {
        /// The static-call module descriptor of this shared object.
        #[unsafe(no_mangle)]
        pub extern "C" fn $sym() -> $crate::ModuleDescriptor {
            $crate::ModuleDescriptor::new($image(), $init)
        }
    };
}

/// The lifecycle and module functions of an implementation crate, over its
/// registry. Every implementation crate invokes this once, so the three
/// expose the same functions.
#[doc(hidden)]
#[macro_export]
macro_rules! __static_call_api {
    ($registry:path, $descriptor:expr) => {
        /// Patches every call site of the program to its key's current target.
        /// Call it once, early; later calls do nothing. Sites in init text are
        /// patched too (see [`init_with`] for the strict policy).
        ///
        /// # Errors
        /// A corrupt site table, a site that is not the expected call, or a failed
        /// system call; nothing is patched then.
        pub fn init() -> $crate::Result<()> {
            $registry.init($crate::InitPolicy::Track)
        }

        /// [`init`] with an explicit policy for call sites in init text.
        ///
        /// # Errors
        /// As for [`init`], plus [`Error::InitSitesRefused`] under
        /// [`InitPolicy::Strict`] when any site lies in init text.
        pub fn init_with(policy: $crate::InitPolicy) -> $crate::Result<()> {
            $registry.init(policy)
        }

        /// Releases the init text (its whole pages become inaccessible); later
        /// updates skip the call sites inside it. Returns the released range.
        ///
        /// # Errors
        /// A failed `mprotect`; nothing changes then.
        pub fn free_init() -> $crate::Result<(usize, usize)> {
            $registry.free_init()
        }

        /// Points `key` at `f`. Same as [`StaticCall::update`].
        ///
        /// # Errors
        /// See [`StaticCall::update`].
        pub fn update<F: $crate::Signature>(
            key: &'static $crate::StaticCall<F>,
            f: F,
        ) -> $crate::Result<()> {
            key.update(f)
        }

        /// The current target of `key` (`None` for a conditional key set to none).
        pub fn query<F: $crate::Signature>(key: &$crate::StaticCall<F>) -> Option<F> {
            key.query()
        }

        /// How the patching engine writes code in this process: through
        /// `/proc/self/mem` or `mprotect` windows, synchronising cores with
        /// `membarrier` or `mprotect` shootdowns. Sets the engine up if it
        /// was not yet.
        ///
        /// # Errors
        /// A failed system call while setting up.
        pub fn engine_info() -> $crate::Result<$crate::text::EngineInfo> {
            $crate::text::engine_info()
        }

        /// Statistics of this implementation's registry.
        pub fn stats() -> $crate::Stats {
            $registry.stats()
        }

        /// What the patching engine has done in this process so far:
        /// batches, slots, writes to code, core synchronisations and the
        /// breakpoint traps it served (shared by the implementations).
        pub fn engine_stats() -> $crate::text::EngineStats {
            $crate::text::engine_stats()
        }

        /// What a call site of `key` in generated code (a JIT, say) must
        /// call before it is registered: this implementation's retpoline
        /// thunk (the indirect one, whose sites first load the target from
        /// the key: `mov rax, [key]`), the key's trampoline, or for a design
        /// whose sites call through the key, the key itself (its first
        /// field is the function pointer). A site beyond `rel32` reach of
        /// a trampoline may call a near stub instead ([`near_stub`]). See
        /// [`load_module`] and [`site_code`].
        pub fn unpatched_target<F>(key: &'static $crate::StaticCall<F>) -> usize {
            $registry
                .unpatched_target(key.raw())
                .expect("the design's trampoline or thunk exists")
        }

        /// The machine code of an unpatched call site of `key` placed at
        /// `at`, and the offset of its 5-byte call (the address to record
        /// in a [`SiteTable`]): `call <trampoline>`, or for the indirect
        /// implementation `mov rax, [rip + key]; call <retpoline thunk>`.
        /// `None` when out of `rel32` reach of `at`.
        pub fn site_code<F>(
            key: &'static $crate::StaticCall<F>,
            at: usize,
        ) -> Option<(Vec<u8>, usize)> {
            $registry.site_code(key.raw(), at)
        }

        /// Opens a shared object built with [`module!`] and registers its call
        /// sites (running its init function, if any). Close it with
        /// [`SharedObject::close`].
        ///
        /// # Errors
        /// See [`SharedObject::open`].
        ///
        /// # Safety
        /// See [`SharedObject::open`]: opening runs the object's initialisers.
        pub unsafe fn load_shared_object(path: &str) -> $crate::Result<$crate::SharedObject> {
            // SAFETY: forwarded to the caller.
            unsafe { $crate::SharedObject::open(&$registry, path, $descriptor) }
        }

        /// Registers a module's site table (see [`Registry::load_module`]).
        ///
        /// # Errors
        /// See [`Registry::load_module`].
        ///
        /// # Safety
        /// See [`Registry::load_module`].
        pub unsafe fn load_module(
            spec: $crate::ModuleSpec<'_>,
            module_init: Option<&mut dyn FnMut() -> std::result::Result<(), String>>,
        ) -> $crate::Result<$crate::ModuleId> {
            // SAFETY: forwarded to the caller.
            unsafe { $registry.load_module(spec, module_init) }
        }

        /// Unregisters a module (see [`Registry::unload_module`]).
        ///
        /// # Errors
        /// See [`Registry::unload_module`].
        ///
        /// # Safety
        /// See [`Registry::unload_module`].
        pub unsafe fn unload_module(id: $crate::ModuleId) -> $crate::Result<()> {
            // SAFETY: forwarded to the caller.
            unsafe { $registry.unload_module(id) }
        }

        /// Statistics of one loaded module.
        ///
        /// # Errors
        /// [`Error::UnknownModule`].
        pub fn module_stats(id: $crate::ModuleId) -> $crate::Result<$crate::ModuleStats> {
            $registry.module_stats(id)
        }
    };
}
