// Test helper for the callee-saved register test (context_test.cpp):
//
//   void spindle_test_switch_with_patterns(void** save, void* load,
//                                          const uint64_t* in, uint64_t* out);
//
// Loads every callee-saved register from in[], calls
// spindle_context_switch(save, load), and when some context switches back,
// stores the same registers into out[]. The caller's own callee-saved
// registers are preserved. Register order in in[] and out[]:
//   x86-64:  rbx rbp r12 r13 r14 r15                          (6 words)
//   AArch64: x19 x20 x21 x22 x23 x24 x25 x26 x27 x28 x29
//            d8 d9 d10 d11 d12 d13 d14 d15                     (19 words)

#if defined(__x86_64__)

        .text
        .globl  spindle_test_switch_with_patterns
        .type   spindle_test_switch_with_patterns, @function
        .p2align 4
spindle_test_switch_with_patterns:   // rdi = save, rsi = load, rdx = in, rcx = out
#ifdef __CET__
        endbr64
#endif
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        pushq   %rcx                 // out; rsp is now 16-byte aligned
        movq    0(%rdx), %rbx
        movq    8(%rdx), %rbp
        movq    16(%rdx), %r12
        movq    24(%rdx), %r13
        movq    32(%rdx), %r14
        movq    40(%rdx), %r15
        call    spindle_context_switch@PLT
        movq    (%rsp), %rcx
        movq    %rbx, 0(%rcx)
        movq    %rbp, 8(%rcx)
        movq    %r12, 16(%rcx)
        movq    %r13, 24(%rcx)
        movq    %r14, 32(%rcx)
        movq    %r15, 40(%rcx)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .size   spindle_test_switch_with_patterns, .-spindle_test_switch_with_patterns

        .section .note.GNU-stack,"",@progbits

#elif defined(__aarch64__)

        .text
        .globl  spindle_test_switch_with_patterns
        .type   spindle_test_switch_with_patterns, %function
        .p2align 4
spindle_test_switch_with_patterns:   // x0 = save, x1 = load, x2 = in, x3 = out
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
        str     x3, [sp, #160]
        ldp     x19, x20, [x2, #0]
        ldp     x21, x22, [x2, #16]
        ldp     x23, x24, [x2, #32]
        ldp     x25, x26, [x2, #48]
        ldp     x27, x28, [x2, #64]
        ldr     x29, [x2, #80]
        ldp     d8, d9, [x2, #88]
        ldp     d10, d11, [x2, #104]
        ldp     d12, d13, [x2, #120]
        ldp     d14, d15, [x2, #136]
        bl      spindle_context_switch
        ldr     x3, [sp, #160]
        stp     x19, x20, [x3, #0]
        stp     x21, x22, [x3, #16]
        stp     x23, x24, [x3, #32]
        stp     x25, x26, [x3, #48]
        stp     x27, x28, [x3, #64]
        str     x29, [x3, #80]
        stp     d8, d9, [x3, #88]
        stp     d10, d11, [x3, #104]
        stp     d12, d13, [x3, #120]
        stp     d14, d15, [x3, #136]
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
        .size   spindle_test_switch_with_patterns, .-spindle_test_switch_with_patterns

        .section .note.GNU-stack,"",%progbits

#else
#error "spindle supports x86-64 and AArch64 only"
#endif
