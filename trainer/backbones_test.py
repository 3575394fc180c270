from trainer.backbones import WEIGHT_FILES, missing_weights, weights_path


def test_missing_weights_name_the_path_to_put_them_in_and_their_origin(tmp_path):
    problem = missing_weights("efficientnet_b0", home=tmp_path)
    path = tmp_path / ".keras" / "models" / "efficientnetb0_notop.h5"
    assert f"{path} does not exist" in problem
    assert "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5" in problem


def test_weights_in_keras_cache_are_found(tmp_path):
    for backbone in WEIGHT_FILES:
        path = weights_path(backbone, home=tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"weights")
        assert missing_weights(backbone, home=tmp_path) is None
