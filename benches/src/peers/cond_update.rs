//! `update/cond-sites`: a conditional key with 1 to 2,000 compiled sites,
//! for every implementation and for a `static-keys` key.

use super::*;

/// Site counts of `update/cond-sites` (the quick mode: 1 and 2,000).
pub fn cond_site_counts() -> &'static [usize] {
    if crate::quick() {
        &[1, 2_000]
    } else {
        &[1, 100, 2_000]
    }
}

macro_rules! rep10 {
    ($($s:tt)*) => { $($s)* $($s)* $($s)* $($s)* $($s)* $($s)* $($s)* $($s)* $($s)* $($s)* };
}
macro_rules! rep100 {
    ($($s:tt)*) => { rep10! { rep10! { $($s)* } } };
}
macro_rules! rep2000 {
    ($($s:tt)*) => { rep10! { rep10! { rep10! { $($s)* $($s)* } } } };
}

/// How a subject of `update/cond-sites` switches its key.
#[derive(Clone, Copy)]
pub enum CondKey {
    /// An implementation's conditional key: `update_cond`.
    Implementation {
        /// Its registry.
        registry: &'static static_call_core::Registry,
        /// The key.
        key: &'static static_call_core::StaticCall<HookFn>,
    },
    /// A `static-keys` key: `enable` / `disable`.
    StaticKeys(&'static static_keys::StaticFalseKey),
}

impl std::fmt::Debug for CondKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CondKey::Implementation { registry, key } => f
                .debug_struct("Implementation")
                .field("design", &registry.design().name)
                .field("key", &key.raw().addr())
                .finish(),
            CondKey::StaticKeys(k) => f
                .debug_tuple("StaticKeys")
                .field(&(*k as *const static_keys::StaticFalseKey))
                .finish(),
        }
    }
}

/// One subject's key of `update/cond-sites`, with its sites in one
/// function.
#[derive(Debug, Clone, Copy)]
pub struct CondSites {
    /// The subject's name.
    pub subject: &'static str,
    /// The key's name in the dumps.
    pub key_name: &'static str,
    /// How many compiled sites the key has.
    pub sites: usize,
    /// Runs every site once (each calls [`tick`] when the key is on);
    /// returns the number of sites.
    pub run: fn(u64) -> u64,
    /// The key.
    pub key: CondKey,
}

impl CondSites {
    /// Switches the key on (to [`tick`]) or off (none): the operation
    /// timed.
    ///
    /// # Errors
    /// The implementation's refusal.
    ///
    /// # Safety
    /// For a `static-keys` key, no other thread may run (the crate's
    /// `enable`/`disable` are documented as single-threaded): see
    /// [`thread_count`].
    pub unsafe fn switch(&self, on: bool) -> Result<(), String> {
        match self.key {
            CondKey::Implementation { key, .. } => key
                .update_cond(on.then_some(tick as HookFn))
                .map_err(|e| format!("{} {}: {e}", self.subject, self.key_name)),
            CondKey::StaticKeys(k) => {
                // SAFETY: the caller guarantees no other thread runs;
                // global_init() has run (`jump_entries`, before any switch).
                unsafe {
                    if on {
                        k.enable();
                    } else {
                        k.disable();
                    }
                }
                Ok(())
            }
        }
    }

    /// Decodes every site of the key (the form its state says), then runs
    /// them all and counts the target's calls: the number of sites when on,
    /// none when off. Returns the first site's dump.
    ///
    /// # Errors
    /// A site of the wrong form, count or place, or a wrong number of calls.
    pub fn check(&self, on: bool, phase: &str) -> Result<Vec<SiteDump>, String> {
        let f = crate::symbols::Symbols::get()?
            .containing(self.run as *const () as usize)
            .ok_or_else(|| format!("{}: no symbol for the sites' function", self.subject))?;
        let (addr, size) = (f.addr, f.size);
        let out = match self.key {
            CondKey::Implementation { registry, key } => {
                let raw = key.raw();
                let sites = registry.sites_of(raw);
                if sites.len() != self.sites {
                    return Err(format!(
                        "{} {}: {} recorded sites, expected {}",
                        self.subject,
                        self.key_name,
                        sites.len(),
                        self.sites
                    ));
                }
                let mut out = Vec::new();
                for (k, &(site, _)) in sites.iter().enumerate() {
                    if !(addr..addr + size).contains(&site) {
                        return Err(format!(
                            "{} {}: site {site:#x} lies outside `{}`",
                            self.subject, self.key_name, f.name
                        ));
                    }
                    // SAFETY: a recorded site of `raw` in this program.
                    let d = unsafe {
                        crate::prove::check_site(
                            self.subject,
                            self.key_name,
                            phase,
                            registry,
                            raw,
                            site,
                        )?
                    };
                    if k == 0 {
                        out = d;
                    }
                }
                out
            }
            CondKey::StaticKeys(k) => {
                if k.is_enabled() != on {
                    return Err(format!(
                        "{} {}: the key is {}, expected {}",
                        self.subject,
                        self.key_name,
                        if k.is_enabled() { "on" } else { "off" },
                        if on { "on" } else { "off" }
                    ));
                }
                check_key_sites(
                    (self.subject, self.key_name, phase),
                    k as *const _ as usize,
                    on,
                    (addr, size),
                    self.sites,
                    tick as HookFn as usize,
                    false,
                )?
            }
        };
        let before = ticks();
        let got = (self.run)(std::hint::black_box(7));
        let calls = ticks().wrapping_sub(before);
        let want = if on { self.sites as u64 } else { 0 };
        if got != self.sites as u64 || calls != want {
            return Err(format!(
                "{} {} ({} sites, key {}): running the sites returned {got} and called the target {calls} times, expected {} and {want}",
                self.subject,
                self.key_name,
                self.sites,
                if on { "on" } else { "off" },
                self.sites
            ));
        }
        Ok(out)
    }
}

/// The `static-keys` keys of `update/cond-sites` and their sites, in
/// their own section.
pub mod static_keys_sites {
    use static_keys::{StaticFalseKey, define_static_key_false, static_branch_unlikely};

    use super::static_keys_peer::tick;

    keys_section!();

    define_static_key_false!(K1);
    define_static_key_false!(K100);
    define_static_key_false!(K2000);

    /// The one site of `K1`.
    #[inline(never)]
    #[unsafe(link_section = "sc_peer_keys")]
    pub fn sites1(x: u64) -> u64 {
        let mut c = ::std::hint::black_box(0u64);
        if static_branch_unlikely!(K1) {
            tick::__call(x);
        }
        c += 1;
        c
    }

    /// The 100 sites of `K100`.
    #[inline(never)]
    #[unsafe(link_section = "sc_peer_keys")]
    pub fn sites100(x: u64) -> u64 {
        let mut c = ::std::hint::black_box(0u64);
        rep100! {
            if static_branch_unlikely!(K100) {
                tick::__call(x);
            }
            c += 1;
        }
        c
    }

    /// The 2,000 sites of `K2000`.
    #[inline(never)]
    #[unsafe(link_section = "sc_peer_keys")]
    pub fn sites2000(x: u64) -> u64 {
        let mut c = ::std::hint::black_box(0u64);
        rep2000! {
            if static_branch_unlikely!(K2000) {
                tick::__call(x);
            }
            c += 1;
        }
        c
    }

    /// The key with `n` sites, as a subject of `update/cond-sites`.
    pub fn key(n: usize) -> Option<super::CondSites> {
        let (key, run, key_name): (&'static StaticFalseKey, fn(u64) -> u64, &'static str) = match n
        {
            1 => (&K1, sites1, "K1"),
            100 => (&K100, sites100, "K100"),
            2_000 => (&K2000, sites2000, "K2000"),
            _ => return None,
        };
        Some(super::CondSites {
            subject: super::peer::STATIC_KEYS,
            key_name,
            sites: n,
            run,
            key: super::CondKey::StaticKeys(key),
        })
    }
}

/// Each implementation's conditional keys of `update/cond-sites`, a module
/// per implementation of the one list.
macro_rules! cond_sites_implementations {
    ($(($m:ident, $krate:path, $name:literal))*) => {
        $(
            #[doc = concat!("The ", $name, " keys of `update/cond-sites`.")]
            pub mod $m {
                use $krate as sc;

                sc::define_static_call!(pub static K1: extern "C" fn(u64) = None;);
                sc::define_static_call!(pub static K100: extern "C" fn(u64) = None;);
                sc::define_static_call!(pub static K2000: extern "C" fn(u64) = None;);

                /// The one site of `K1`.
                #[inline(never)]
                pub fn sites1(x: u64) -> u64 {
                    let mut c = ::std::hint::black_box(0u64);
                    sc::static_call_cond!(K1(x));
                    c += 1;
                    c
                }

                /// The 100 sites of `K100`.
                #[inline(never)]
                pub fn sites100(x: u64) -> u64 {
                    let mut c = ::std::hint::black_box(0u64);
                    rep100! {
                        sc::static_call_cond!(K100(x));
                        c += 1;
                    }
                    c
                }

                /// The 2,000 sites of `K2000`.
                #[inline(never)]
                pub fn sites2000(x: u64) -> u64 {
                    let mut c = ::std::hint::black_box(0u64);
                    rep2000! {
                        sc::static_call_cond!(K2000(x));
                        c += 1;
                    }
                    c
                }

                /// The key with `n` sites.
                pub fn key(n: usize) -> Option<super::CondSites> {
                    let (key, run, key_name): (&'static static_call_core::StaticCall<super::HookFn>, fn(u64) -> u64, &'static str) = match n {
                        1 => (&K1, sites1, "K1"),
                        100 => (&K100, sites100, "K100"),
                        2_000 => (&K2000, sites2000, "K2000"),
                        _ => return None,
                    };
                    Some(super::CondSites {
                        subject: $name,
                        key_name,
                        sites: n,
                        run,
                        key: super::CondKey::Implementation {
                            registry: &sc::__private::REGISTRY,
                            key,
                        },
                    })
                }
            }
        )*

        /// Every subject's key of `update/cond-sites` with `n` sites (one of
        /// 1, 100, 2,000): the implementations', in the one list's order,
        /// then static-keys'.
        pub fn cond_sites(n: usize) -> Vec<CondSites> {
            let mut v: Vec<CondSites> = [$($m::key(n)),*].into_iter().flatten().collect();
            v.extend(static_keys_sites::key(n));
            v
        }
    };
}

/// The implementations' keys of `update/cond-sites`.
pub mod cond_sites_keys {
    use super::{CondKey, CondSites, HookFn, static_keys_sites};
    static_call_implementations::implementations!(cond_sites_implementations);
}
