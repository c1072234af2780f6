"""Real TFDS datasets get as far as their download, with no network used.

The recipes' defaults and any TFDS name a user passes go through
`download_and_prepare`, which first reads the dataset's bundled URL
checksums; on Python >= 3.9 TFDS needs `importlib_resources` for that
without declaring it (tensorflow/datasets#11212).
"""

import pytest
import tensorflow_datasets as tfds

from keras_attention.data.translation import DEFAULT_DATASET


@pytest.mark.parametrize(
    "name", [DEFAULT_DATASET, "imdb_reviews", "ag_news_subset"]
)
def test_tfds_finds_the_download_urls_of_real_datasets(tmp_path, name):
    builder = tfds.builder(name, data_dir=str(tmp_path))
    urls = builder.url_infos  # read from the package, not the network
    assert urls, f"{name} lists no download URLs"
    assert all(url.startswith("http") for url in urls)
