"""Listing, loading and inspecting plugins."""
import pytest

import iotstream


def test_built_plugins_are_described_with_their_config_keys(plugin_dir):
    catalog = iotstream.describe_plugins()
    assert {"anomaly", "aggregate", "window"} <= set(catalog.names)
    assert catalog.rejected == []
    window = catalog["window"]
    assert window.kind == "stage" and window.version and window.description
    keys = {k.name: k for k in window.config}
    assert keys["size_s"].type == "int" and keys["size_s"].default == 300 and keys["size_s"].help
    assert "size_s" in window.help() and "grace_s" in window.help()
    frame = catalog.to_frame()
    assert set(frame["plugin"]) >= {"anomaly", "aggregate", "window"}
    assert frame.loc[frame["key"] == "interval_ms", "plugin"].tolist() == ["aggregate"]


def test_unknown_plugin_name_is_not_found(plugin_dir):
    with pytest.raises(iotstream.NotFoundError, match="nope"):
        iotstream.describe_plugins(plugin_dir)["nope"]


def test_files_that_are_not_plugins_are_rejected_with_a_reason(tmp_path):
    (tmp_path / "broken.so").write_bytes(b"not an ELF file")
    catalog = iotstream.describe_plugins(tmp_path)
    assert catalog.plugins == []
    assert len(catalog.rejected) == 1 and "broken.so" in str(catalog.rejected[0])


def test_pipeline_loads_plugins_from_the_named_folder(broker, tmp_path):
    with pytest.raises(iotstream.PluginError, match="has no plugin in " + str(tmp_path)):
        broker.pipeline({"plugins": {"dir": str(tmp_path)}})
