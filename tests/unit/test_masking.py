from __future__ import annotations

from labelcycle.masking import has_secret, mask, mask_mapping


def test_mask_hides_the_password_of_a_url_and_keeps_user_host_and_database():
    url = "postgresql://optuna:s3cr3t!x@db.internal:5432/optuna"
    assert mask(url) == "postgresql://optuna:***@db.internal:5432/optuna"


def test_mask_hides_passwords_inside_a_sentence_and_credential_query_values():
    text = "cannot reach http://admin:hunter2@mlflow:5000 (token=abc123&x=1)"
    masked = mask(text)
    assert "hunter2" not in masked and "abc123" not in masked
    assert "http://admin:***@mlflow:5000" in masked and "x=1" in masked


def test_mask_leaves_urls_without_credentials_unchanged():
    for text in ("sqlite:////tmp/mlflow.db", "http://127.0.0.1:5000", "postgresql://user@db/x", 42, None):
        assert mask(text) == text
        assert not has_secret(text)


def test_mask_mapping_masks_nested_strings_only():
    data = {"tune": {"storage": "postgresql://u:pw@h/db", "n_trials": 3}, "list": ["mysql://a:b@c/d"]}
    out = mask_mapping(data)
    assert out == {
        "tune": {"storage": "postgresql://u:***@h/db", "n_trials": 3},
        "list": ["mysql://a:***@c/d"],
    }
    assert data["tune"]["storage"] == "postgresql://u:pw@h/db"  # the input is not changed
