//! Modules that are shared objects: `dlopen`, find the object's descriptor,
//! register its site table; unregister before `dlclose`. The object is
//! opened, searched and closed through `libloading`: a looked-up symbol
//! borrows the open library, so it cannot outlive it.
//!
//! A module crate (built as a `cdylib`) calls its implementation's
//! `module!` macro, which exports a descriptor function returning a
//! [`ModuleDescriptor`]: the bounds of the object's *own* site table and
//! init text (each shared object has its own hidden `__start_`/`__stop_`
//! symbols) and its optional init function. Its call sites use keys of the
//! main program through `declare_static_call!`: each site's entry points
//! at a per-(key, object) slot holding the key's address (filled by the
//! dynamic linker), and each site calls a per-(key, object) near stub that
//! jumps through the key's trampoline pointer — an in-range path from
//! wherever the object lands.

use std::ffi::{CStr, c_void};

use libloading::Library;
use libloading::os::unix::{Library as UnixLibrary, RTLD_LOCAL, RTLD_NOW};

use crate::error::{Error, Result};
use crate::registry::{ImageSections, ModuleId, ModuleSpec, Registry};

/// Current version of [`ModuleDescriptor`].
pub const DESCRIPTOR_VERSION: u32 = 1;

/// What a module's descriptor function returns.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ModuleDescriptor {
    /// [`DESCRIPTOR_VERSION`].
    pub version: u32,
    /// Start of the object's site table.
    pub sites_start: usize,
    /// End of the object's site table.
    pub sites_end: usize,
    /// Start of the object's init text.
    pub init_start: usize,
    /// End of the object's init text.
    pub init_end: usize,
    /// The module's init function: 0 for success, anything else fails the
    /// load (and the module is unloaded again).
    pub init: Option<extern "C" fn() -> i32>,
}

impl ModuleDescriptor {
    #[doc(hidden)]
    pub fn new(s: ImageSections, init: Option<extern "C" fn() -> i32>) -> ModuleDescriptor {
        ModuleDescriptor {
            version: DESCRIPTOR_VERSION,
            sites_start: s.sites.0,
            sites_end: s.sites.1,
            init_start: s.init.0,
            init_end: s.init.1,
            init,
        }
    }
}

/// A shared object loaded as a module of one registry. Unregistered and
/// closed by [`SharedObject::close`] (or on drop, ignoring errors).
#[derive(Debug)]
pub struct SharedObject {
    /// The open object; `None` once closed, or leaked because it could not
    /// be unregistered.
    lib: Option<Library>,
    id: ModuleId,
    registry: &'static Registry,
    path: String,
}

/// Gives up `lib` without closing it: its module stays registered, so its
/// code must stay mapped for the rest of the process.
fn leak(lib: Library) {
    let _handle = UnixLibrary::from(lib).into_raw();
}

impl SharedObject {
    /// Opens `path` (`RTLD_NOW | RTLD_LOCAL`), calls its descriptor function
    /// `descriptor`, and loads its site table into `registry` (running the
    /// module's init function, if it has one).
    ///
    /// # Errors
    /// [`Error::SharedObject`] when the object cannot be opened or has no
    /// valid descriptor; any error of [`Registry::load_module`]. On error
    /// the object is closed again and nothing stays registered — except
    /// after [`Error::ModuleLeaked`] (its init failed and its sites could
    /// not be written back): the module stays registered, so the object is
    /// never closed.
    ///
    /// # Safety
    /// Opening a shared object runs its initialisers. The object's
    /// descriptor must describe its own sections, and it must be built
    /// against the same version of this library.
    pub unsafe fn open(registry: &'static Registry, path: &str, descriptor: &CStr) -> Result<Self> {
        let so_err = |message: String| Error::SharedObject {
            path: path.to_string(),
            message,
        };
        if path.contains('\0') {
            return Err(so_err("path contains a NUL byte".into()));
        }
        // SAFETY: opening runs the object's initialisers, which the caller
        // accepted. From here on every early return drops `lib`, which
        // closes the object again (nothing of it is registered yet).
        let lib: Library = unsafe { UnixLibrary::open(Some(path), RTLD_NOW | RTLD_LOCAL) }
            .map_err(|e| so_err(e.to_string()))?
            .into();
        let d = {
            // SAFETY: `module!` emits the descriptor function with exactly
            // this signature; the symbol borrows `lib`, which stays open
            // while it is called.
            let f = unsafe {
                lib.get::<extern "C" fn() -> ModuleDescriptor>(descriptor.to_bytes_with_nul())
            }
            .map_err(|e| {
                so_err(format!(
                    "no descriptor {descriptor:?} (did the module call module!()?): {e}"
                ))
            })?;
            f()
        };
        if d.version != DESCRIPTOR_VERSION {
            return Err(so_err(format!(
                "descriptor {descriptor:?}: version {} (expected {DESCRIPTOR_VERSION})",
                d.version
            )));
        }
        let spec = ModuleSpec {
            name: path,
            sections: ImageSections {
                sites: (d.sites_start, d.sites_end),
                init: (d.init_start, d.init_end),
            },
        };
        let mut run_init = d.init.map(|f| {
            move || -> std::result::Result<(), String> {
                match f() {
                    0 => Ok(()),
                    rc => Err(format!("init function returned {rc}")),
                }
            }
        });
        let init: Option<&mut dyn FnMut() -> std::result::Result<(), String>> =
            run_init.as_mut().map(|f| f as _);
        // SAFETY: `lib` stays open (mapped) until `close` unloads the module
        // first; its table is its own.
        let id = match unsafe { registry.load_module(spec, init) } {
            Ok(id) => id,
            // Still registered: unmapping it would leave the registry
            // linking code that is gone. Leak the handle.
            Err(e @ Error::ModuleLeaked { .. }) => {
                leak(lib);
                return Err(e);
            }
            // Nothing registered: returning drops (closes) `lib`.
            Err(e) => return Err(e),
        };
        Ok(SharedObject {
            lib: Some(lib),
            id,
            registry,
            path: path.to_string(),
        })
    }

    /// The module's handle in its registry.
    pub fn id(&self) -> ModuleId {
        self.id
    }

    /// The path it was opened from.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Looks up a symbol of the object.
    pub fn symbol(&self, name: &CStr) -> Option<*const c_void> {
        let lib = self.lib.as_ref()?;
        // SAFETY: the symbol is read as its address only (a pointer-sized
        // `*const c_void`), never called or dereferenced here.
        let sym = unsafe { lib.get::<*const c_void>(name.to_bytes_with_nul()) }.ok()?;
        Some(*sym)
    }

    /// Unregisters the module, then closes the object.
    ///
    /// # Errors
    /// [`Error::ModuleLeaked`] when unregistering fails: the module stays
    /// registered (its handle, in the error, can be unloaded later with
    /// [`Registry::unload_module`]) and the object is never closed, so the
    /// registry never links unmapped code. [`Error::SharedObject`] when the
    /// module was unregistered but the dynamic loader refused to close the
    /// object (`dlclose` failed; its handle is released either way).
    ///
    /// # Safety
    /// No thread may run the object's code, or use pointers into it, after
    /// this returns `Ok`.
    pub unsafe fn close(mut self) -> Result<()> {
        // SAFETY: the object is still mapped. Closed or leaked: either way
        // `lib` is `None` after this, so `Drop` has nothing left to do.
        unsafe { self.unload() }
    }

    /// Unregisters, then closes only if that worked; leaks the library if
    /// not. Takes `lib`, so it acts at most once.
    ///
    /// # Safety
    /// As for [`SharedObject::close`].
    unsafe fn unload(&mut self) -> Result<()> {
        let Some(lib) = self.lib.take() else {
            return Ok(());
        };
        // SAFETY: the object is still mapped (`lib` is open).
        if let Err(e) = unsafe { self.registry.unload_module(self.id) } {
            leak(lib);
            return Err(Error::ModuleLeaked {
                name: self.path.clone(),
                id: self.id.0,
                cause: Box::new(e),
            });
        }
        // Unregistered above, so nothing links the object any more.
        lib.close().map_err(|e| Error::SharedObject {
            path: self.path.clone(),
            message: format!("dlclose: {e}"),
        })
    }
}

impl Drop for SharedObject {
    fn drop(&mut self) {
        // SAFETY: as in `close`; dropping an open module means the owner
        // is done with it. On error it stays mapped (leaked).
        let _ = unsafe { self.unload() };
    }
}
