//! Modules that are shared objects: `dlopen`, find the object's descriptor,
//! register its site table; unregister before `dlclose`.
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

use std::ffi::{CStr, CString, c_void};

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
    handle: *mut c_void,
    id: ModuleId,
    registry: &'static Registry,
    path: String,
}

// SAFETY: the handle is only passed to dlsym/dlclose, which are thread-safe.
unsafe impl Send for SharedObject {}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a valid C string owned by libc.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown dynamic-loader error".into()
    } else {
        // SAFETY: non-null C string from dlerror.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
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
        let cpath = CString::new(path).map_err(|_| so_err("path contains a NUL byte".into()))?;
        // SAFETY: valid C string; opening runs the object's initialisers,
        // which the caller accepted.
        let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(so_err(dl_error()));
        }
        let close = |e: Error| {
            // SAFETY: the handle we opened above.
            unsafe { libc::dlclose(handle) };
            e
        };
        // SAFETY: valid handle and C string.
        let sym = unsafe { libc::dlsym(handle, descriptor.as_ptr()) };
        if sym.is_null() {
            return Err(close(so_err(format!(
                "no descriptor {:?} (did the module call module!()?)",
                descriptor
            ))));
        }
        // SAFETY: the descriptor function has this signature (module! emits it).
        let f: extern "C" fn() -> ModuleDescriptor = unsafe { std::mem::transmute(sym) };
        let d = f();
        if d.version != DESCRIPTOR_VERSION {
            return Err(close(so_err(format!(
                "descriptor version {} (expected {DESCRIPTOR_VERSION})",
                d.version
            ))));
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
        // SAFETY: the object stays open (mapped) until `close` unloads it
        // first; its table is its own.
        let id = match unsafe { registry.load_module(spec, init) } {
            Ok(id) => id,
            // Still registered: unmapping it would leave the registry
            // linking code that is gone. Leak the handle.
            Err(e @ Error::ModuleLeaked { .. }) => return Err(e),
            Err(e) => return Err(close(e)),
        };
        Ok(SharedObject {
            handle,
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
        // SAFETY: valid handle and C string.
        let p = unsafe { libc::dlsym(self.handle, name.as_ptr()) };
        (!p.is_null()).then_some(p as *const c_void)
    }

    /// Unregisters the module, then closes the object.
    ///
    /// # Errors
    /// [`Error::ModuleLeaked`] when unregistering fails: the module stays
    /// registered (its handle, in the error, can be unloaded later with
    /// [`Registry::unload_module`]) and the object is never closed, so the
    /// registry never links unmapped code.
    ///
    /// # Safety
    /// No thread may run the object's code, or use pointers into it, after
    /// this returns `Ok`.
    pub unsafe fn close(mut self) -> Result<()> {
        // SAFETY: the object is still mapped.
        let r = unsafe { self.unload() };
        // Closed or leaked: either way `Drop` has nothing left to do.
        self.handle = std::ptr::null_mut();
        r
    }

    /// Unregisters, then closes only if that worked.
    ///
    /// # Safety
    /// As for [`SharedObject::close`]; the handle is open.
    unsafe fn unload(&self) -> Result<()> {
        // SAFETY: the object is still mapped.
        if let Err(e) = unsafe { self.registry.unload_module(self.id) } {
            return Err(Error::ModuleLeaked {
                name: self.path.clone(),
                id: self.id.0,
                cause: Box::new(e),
            });
        }
        // SAFETY: our handle; unregistered above, so nothing links it.
        unsafe { libc::dlclose(self.handle) };
        Ok(())
    }
}

impl Drop for SharedObject {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            // SAFETY: as in `close`; dropping an open module means the owner
            // is done with it. On error it stays mapped (leaked).
            let _ = unsafe { self.unload() };
        }
    }
}
