// AArch64 (AAPCS64) context switch. See include/spindle/context/context.hpp.
//
// Frame saved on the suspended stack (176 bytes, 16-byte aligned):
//    0: x19 x20   16: x21 x22   32: x23 x24   48: x25 x26   64: x27 x28
//   80: x29 x30   96: d8 d9    112: d10 d11  128: d12 d13  144: d14 d15
//  160: FPCR     168: padding
// AAPCS64 makes x19-x29, the low halves of v8-v15 and the FPCR control bits
// callee-saved; x30 is the address the switch returns to.

        .text
        .globl  spindle_context_switch
        .type   spindle_context_switch, %function
        .p2align 4
spindle_context_switch:          // x0 = void** save, x1 = void* load
        .cfi_startproc
        sub     sp, sp, #176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]
        mov     x9, sp
        str     x9, [x0]
        mov     sp, x1
        ldr     x9, [sp, #160]
        msr     fpcr, x9
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        add     sp, sp, #176
        ret
        .cfi_endproc
        .size   spindle_context_switch, .-spindle_context_switch

// First return target of a fresh context: x19 = entry, x20 = argument.
// The entry never returns; the CFI stops unwinders here.
        .globl  spindle_context_trampoline
        .hidden spindle_context_trampoline
        .type   spindle_context_trampoline, %function
        .p2align 4
spindle_context_trampoline:
        .cfi_startproc
        .cfi_undefined x30
        mov     x0, x20
        blr     x19
        brk     #0x3e8
        .cfi_endproc
        .size   spindle_context_trampoline, .-spindle_context_trampoline

        .section .note.GNU-stack,"",%progbits
