"""The fused forward/backward of a routed LoRA mixture (the fast path of :mod:`.moe_lora`).

All experts' ``A`` form one ``(N r, d_in)`` weight and their ``B`` one ``(d_out, N r)`` weight;
the router joins the ``A`` matmul; the gates scale each expert's block of ``r`` ranks; the
output accumulates into the frozen base layer's; a hand-written backward skips autograd's
intermediate copies.
"""
import torch

from .routers import select_gates

class _MoELoRAFunction(torch.autograd.Function):
    """Fused forward/backward of a routed LoRA mixture, optionally around a frozen linear.

    Forward (``M`` tokens, ``R = N r`` ranks, ``n = N`` logits, ``s = alpha / r``)::

        [h | z] = x [A; R_t]^T          one GEMM for all experts' A and the router
        g       = gates(z)              top-k + softmax over the selected columns, (M, n)
        y       = [x W^T + b] + s (h * expand_r(g)) B^T    accumulated into one output

    The bracket is there only when a base ``weight`` is given (per-linear placement); without
    one ``y`` is the experts' sum alone (placement beside an FFN, whose output the host adds).

    Backward computes only the gradients autograd asks for, writes the rank and router
    gradients into one ``(M, R + n)`` buffer (so the A and router weights share one GEMM each
    way), accumulates ``dx`` in place and never materialises per-expert tensors. With
    per-sample routers (``router_w`` of shape ``(N, n, d_in)``) each sample's ``[A; R]`` is
    stacked into ``(N, R + n, d_in)`` and the GEMMs become batched matmuls over the samples.

    Inputs: ``x`` (M, d_in) contiguous, ``weight`` (d_out, d_in) or None, ``bias`` (d_out,) or
    None, ``lora_A`` (R, d_in), ``lora_B`` (d_out, R), ``router_w`` (n, d_in) or (N, n, d_in).
    Outputs: ``y`` (M, d_out); ``logits`` (M, n) (differentiable, for auxiliary losses);
    ``gates`` (M, n) (at least float32) and ``top_idx`` (M, k) (empty when k == N - S), both
    not differentiable.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, lora_A, lora_B, router_w, num_sparse, top_k, rank,
                scaling, shared_gating, batch_size):
        num_tokens, in_features = x.shape
        total_rank = lora_A.shape[0]
        num_logits = total_rank // rank
        if router_w.dim() == 3:  # one router per sample: one GEMM per sample, A joins each
            fused_w = torch.cat([lora_A.expand(batch_size, -1, -1), router_w], 1)
            hz = torch.bmm(x.view(batch_size, -1, in_features), fused_w.transpose(1, 2)).view(
                num_tokens, total_rank + num_logits)
        else:
            fused_w = torch.cat([lora_A, router_w], 0)
            hz = x.mm(fused_w.t())
        hidden, logits = hz[:, :total_rank], hz[:, total_rank:]
        # Gates in at least float32 (half-precision logits are upcast for the softmax).
        gate_dtype = torch.promote_types(logits.dtype, torch.float32)
        soft, columns, gates, top_idx = select_gates(logits.to(gate_dtype), num_sparse, top_k,
                                                     shared_gating)
        gates_x = gates.to(x.dtype)
        gated = (hidden.view(num_tokens, num_logits, rank) * gates_x.unsqueeze(-1)).view(
            num_tokens, total_rank)
        if weight is None:
            out = gated.mm(lora_B.t())
            if scaling != 1:
                out.mul_(scaling)
        else:
            out = x.mm(weight.t()) if bias is None else torch.addmm(bias, x, weight.t())
            out.addmm_(gated, lora_B.t(), alpha=scaling)

        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, weight, lora_B, fused_w, hidden, gated, gates_x, soft, columns)
        ctx.config = (rank, scaling, batch_size, bias is not None)
        if top_idx is None:
            top_idx = torch.empty(num_tokens, 0, dtype=torch.long, device=x.device)
        ctx.mark_non_differentiable(gates, top_idx)
        return out, logits, gates, top_idx

    @staticmethod
    def backward(ctx, grad_out, grad_logits, grad_gates, grad_idx):
        x, weight, lora_B, fused_w, hidden, gated, gates_x, soft, columns = ctx.saved_tensors
        rank, scaling, batch_size, has_bias = ctx.config
        need_x, need_w, need_b, need_a, need_lora_b, need_router = ctx.needs_input_grad[:6]
        num_tokens, in_features = x.shape
        total_rank = lora_B.shape[1]
        num_logits = total_rank // rank
        shaped = (num_tokens, num_logits, rank)
        grad_x = grad_w = grad_b = grad_a = grad_lora_b = grad_router = None

        only_logits = grad_out is None  # only an auxiliary loss on the logits: no B/W/b grads
        if only_logits:
            grad_out = x.new_zeros(num_tokens, lora_B.shape[0])
            need_w = need_b = need_lora_b = False
        # One copy here instead of one inside every matmul below when the incoming gradient
        # is strided or expanded (e.g. straight from a sum()).
        grad_out = grad_out.contiguous()
        prod = grad_out.mm(lora_B).view(shaped)  # dL/d(gated) / s
        # Rank gradients in columns [0, R), router-logit gradients in [R, R + n).
        grad_hz = x.new_empty(num_tokens, total_rank + num_logits)
        grad_hidden, grad_z = grad_hz[:, :total_rank], grad_hz[:, total_rank:]
        scaled_gates = gates_x if scaling == 1 else gates_x * scaling
        torch.mul(prod, scaled_gates.unsqueeze(-1), out=grad_hidden.view(shaped))
        # Through the gate softmax on the selected columns: d z = soft * (d g - <d g, soft>).
        # Unselected sparse experts get no gradient; 'fixed' shared experts are constants.
        grad_gate = (prod * hidden.view(shaped)).sum(-1).to(soft.dtype)
        width = soft.shape[1]
        picked = grad_gate[:, :width] if columns is None else grad_gate.gather(1, columns)
        if scaling != 1:
            picked = picked * scaling
        grad_soft = (soft * (picked - (picked * soft).sum(-1, keepdim=True))).to(x.dtype)
        if columns is None:
            grad_z[:, :width] = grad_soft
            grad_z[:, width:] = 0
        else:
            grad_z.zero_().scatter_(1, columns, grad_soft)
        if grad_logits is not None:
            grad_z += grad_logits

        if need_lora_b:
            grad_lora_b = grad_out.t().mm(gated)
            if scaling != 1:
                grad_lora_b.mul_(scaling)
        if need_w:
            grad_w = grad_out.t().mm(x)
        if need_b and has_bias:
            grad_b = grad_out.sum(0)
        if need_x:  # the base layer's part first, then the experts' and the router's
            grad_x = x.new_zeros(num_tokens, in_features) if weight is None else \
                grad_out.mm(weight)
        if fused_w.dim() == 3:  # per-sample routers: fused_w is (N, R + n, d_in)
            x3 = x.view(batch_size, -1, in_features)
            grad_hz3 = grad_hz.view(batch_size, -1, total_rank + num_logits)
            if need_a or need_router:
                grad_fused = torch.bmm(grad_hz3.transpose(1, 2), x3)
                if need_a:
                    grad_a = grad_fused[:, :total_rank].sum(0)
                grad_router = grad_fused[:, total_rank:]
            if need_x:
                grad_x.view(batch_size, -1, in_features).baddbmm_(grad_hz3, fused_w)
        else:
            if need_a or need_router:
                grad_fused = grad_hz.t().mm(x)
                grad_a, grad_router = grad_fused[:total_rank], grad_fused[total_rank:]
            if need_x:
                grad_x.addmm_(grad_hz, fused_w)
        return (grad_x, grad_w, grad_b, grad_a, grad_lora_b, grad_router, None, None, None,
                None, None, None)
