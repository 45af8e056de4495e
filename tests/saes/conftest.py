import pytest
import torch

from superscope.saes import SAEConfig, create_sae, known_architectures

ARCHS = list(known_architectures())


def make_sae(arch: str, d_in: int = 12, d_sae: int = 48, k: int = 4, seed: int = 0, **kw):
    sae = create_sae(SAEConfig(architecture=arch, d_in=d_in, d_sae=d_sae, k=k, **kw))
    sae.reset_parameters(seed)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.1)
        sae.b_dec.normal_(0, 0.1)
    return sae


@pytest.fixture(params=ARCHS)
def arch(request):
    return request.param
