"""Real TFDS datasets get as far as their download, with no network used.

The recipes' defaults and any TFDS name a user passes go through
`download_and_prepare`, which first reads the dataset's bundled URL
checksums; on Python >= 3.9 TFDS needs `importlib_resources` for that
without declaring it (tensorflow/datasets#11212).
"""

import pytest
import tensorflow_datasets as tfds

from keras_attention.data.tfds import tfds_builder
from keras_attention.data.translation import DEFAULT_DATASET


@pytest.mark.parametrize(
    "name", [DEFAULT_DATASET, "imdb_reviews", "ag_news_subset"]
)
def test_tfds_finds_the_download_urls_of_real_datasets(tmp_path, name):
    builder = tfds.builder(name, data_dir=str(tmp_path))
    urls = builder.url_infos  # read from the package, not the network
    assert urls, f"{name} lists no download URLs"
    assert all(url.startswith("http") for url in urls)


@pytest.mark.parametrize(
    "name, match",
    [
        ("imdb_review", "Did you mean: imdb_review -> imdb_reviews"),
        ("wmt14_translate/en-de", r"en-de not found.*Configs: \['cs-en', 'de"),
        ("imdb_reviews:9.9.9", "version 9.9.9, only: 1.0.0"),
    ],
)
def test_unknown_names_configs_and_versions_say_what_exists(
    tmp_path, name, match
):
    with pytest.raises(ValueError, match=match):
        tfds_builder(name, data_dir=str(tmp_path))


def test_a_dataset_named_without_its_config_logs_the_one_used(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        builder = tfds_builder("glue", data_dir=str(tmp_path))
    assert builder.builder_config.name == "cola"
    assert "TFDS uses the first, 'cola'. Name one as 'glue/<config>'" in (
        caplog.text
    )
    caplog.clear()
    with caplog.at_level("WARNING"):
        tfds_builder("glue/sst2", data_dir=str(tmp_path))
    assert "several configs" not in caplog.text
