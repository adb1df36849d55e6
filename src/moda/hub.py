"""The Hugging Face hub repositories the released models come from (downloads happen only where asked for)."""

MODA_HUB_REPO = "lixinyizju/moda"  # the authors' weights, cloned by users as pretrained_weights/
HUBERT_HUB_ID = "TencentGameMate/chinese-hubert-base"
LIVEPORTRAIT_HUB_REPO = "KwaiVGI/LivePortrait"
LIVEPORTRAIT_HUB_PREFIX = "liveportrait/"  # the folder holding base_models/ and retargeting_models/ there
