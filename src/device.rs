//! Choosing the tch device. CUDA needs `libtorch_cuda.so`, which `--as-needed` linking drops, so it
//! is loaded at run time when asked for.

use std::ffi::CString;
use tch::{Cuda, Device};

extern "C" {
    fn dlopen(file: *const std::os::raw::c_char, flags: i32) -> *mut std::ffi::c_void;
    fn dlerror() -> *const std::os::raw::c_char;
}

const RTLD_NOW: i32 = 2;
const RTLD_GLOBAL: i32 = 0x100;

/// Resolves `cpu`, `cuda` or `cuda:N`. Asking for CUDA where it cannot run is an error, never a
/// silent fall-back to the CPU.
pub fn select(name: &str) -> Result<Device, String> {
    match name {
        "cpu" => Ok(Device::Cpu),
        _ if name == "cuda" || name.starts_with("cuda:") => {
            let index: usize = match name.strip_prefix("cuda:") {
                Some(i) => i.parse().map_err(|_| format!("bad device {name:?}"))?,
                None => 0,
            };
            load_cuda()?;
            if !Cuda::is_available() || index >= Cuda::device_count() as usize {
                return Err(format!(
                    "--device {name}: libtorch_cuda loaded but CUDA reports {} device(s)",
                    Cuda::device_count()
                ));
            }
            Ok(Device::Cuda(index))
        }
        _ => Err(format!("unknown device {name:?} (use cpu, cuda or cuda:N)")),
    }
}

fn load_cuda() -> Result<(), String> {
    let lib = CString::new("libtorch_cuda.so").expect("no NUL");
    // SAFETY: dlopen/dlerror are called with a valid NUL-terminated string; the handle is kept for
    // the life of the process (never closed), as libtorch expects.
    let handle = unsafe { dlopen(lib.as_ptr(), RTLD_NOW | RTLD_GLOBAL) };
    if handle.is_null() {
        let why = unsafe {
            let e = dlerror();
            if e.is_null() {
                "unknown error".to_string()
            } else {
                std::ffi::CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        };
        return Err(format!(
            "CUDA was asked for but libtorch_cuda.so cannot be loaded ({why}); \
             install the full CUDA libtorch with `scripts/setup-libtorch --cuda` on a machine with an NVIDIA GPU"
        ));
    }
    Ok(())
}

/// A short description of where training runs, for logs and model cards.
pub fn describe(device: Device) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    match device {
        Device::Cpu => format!("cpu ({} threads): {cpu}", tch::get_num_threads()),
        d => format!("{d:?}"),
    }
}
