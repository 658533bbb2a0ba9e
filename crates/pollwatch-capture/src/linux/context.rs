//! The interrupted instruction's address, from the `ucontext_t` a signal handler receives.
//! One function per architecture; 0 (unknown) where the layout is not known here.

/// The program counter of the instruction the signal interrupted.
///
/// # Safety
///
/// `context` must be the third argument the kernel passed to an `SA_SIGINFO` handler that is
/// still running (or null).
#[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
pub(crate) unsafe fn interrupted_pc(context: *mut libc::c_void) -> usize {
    let context = context.cast::<libc::ucontext_t>();
    if context.is_null() {
        return 0;
    }
    // SAFETY: per this function's contract, `context` points to the live ucontext_t of this
    // handler; REG_RIP indexes the saved instruction pointer within `gregs`.
    let rip = unsafe { (*context).uc_mcontext.gregs[libc::REG_RIP as usize] };
    rip as usize
}

/// The program counter of the instruction the signal interrupted.
///
/// # Safety
///
/// `context` must be the third argument the kernel passed to an `SA_SIGINFO` handler that is
/// still running (or null).
#[cfg(all(target_arch = "aarch64", target_env = "gnu"))]
pub(crate) unsafe fn interrupted_pc(context: *mut libc::c_void) -> usize {
    let context = context.cast::<libc::ucontext_t>();
    if context.is_null() {
        return 0;
    }
    // SAFETY: per this function's contract, `context` points to the live ucontext_t of this
    // handler, whose `uc_mcontext.pc` is the saved program counter.
    let pc = unsafe { (*context).uc_mcontext.pc };
    pc as usize
}

/// Unknown on this architecture or C library: the capture keeps every frame.
///
/// # Safety
///
/// None needed; `unsafe` only to match the other architectures.
#[cfg(not(any(
    all(target_arch = "x86_64", target_env = "gnu"),
    all(target_arch = "aarch64", target_env = "gnu")
)))]
pub(crate) unsafe fn interrupted_pc(_context: *mut libc::c_void) -> usize {
    0
}
