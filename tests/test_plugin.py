"""The plugin loads as QGIS loads it, registers its provider, and reports missing packages."""
import json

from helpers import ROOT, qgis_process

ALGORITHMS = {"inbetween:train", "inbetween:generateframes", "inbetween:exportfield"}


def test_metadata_is_complete():
    import configparser

    meta = configparser.ConfigParser()
    meta.read(ROOT / "metadata.txt")
    general = meta["general"]
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email",
                "tracker", "repository", "tags", "icon", "hasProcessingProvider"):
        assert general.get(key), key
    assert general["name"] == "In-between dynamics"
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["hasProcessingProvider"] == "yes"
    assert (ROOT / general["icon"]).is_file()


def test_provider_registered_in_qgis(provider):
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    assert registry.providerById("inbetween") is provider
    ids = {alg.id() for alg in provider.algorithms()}
    assert ALGORITHMS <= ids
    assert not provider.icon().isNull()
    for alg_id in ALGORITHMS:
        alg = registry.algorithmById(alg_id)
        assert alg.shortHelpString()
        names = {p.name() for p in alg.parameterDefinitions()}
        assert {"FIRST", "SECOND"} <= names


def test_train_parameters_follow_the_contract(provider):
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().algorithmById("inbetween:train")
    names = {p.name() for p in alg.parameterDefinitions()}
    assert {"FIRST", "SECOND", "START_TIME", "END_TIME", "STEPS", "PRESET", "ITERATIONS", "BATCH_SIZE",
            "PATCH_SIZE", "STRIDE", "DEVICE", "SEED", "OUTPUT_MODEL"} <= names
    preset = alg.parameterDefinition("PRESET")
    assert preset.options() == ["fast", "paper-example-1", "paper-example-2", "paper-example-3"]
    assert preset.usesStaticStrings()
    assert alg.parameterDefinition("DEVICE").options() == ["auto", "cpu", "cuda"]


def test_dialogs_read_in_workflow_order_with_help_and_advanced_parameters(provider):
    from qgis.core import QgsApplication, QgsProcessingParameterDefinition

    registry = QgsApplication.processingRegistry()
    workflow = ["inbetween:pipeline", "inbetween:train", "inbetween:generateframes", "inbetween:exportfield"]
    algs = [registry.algorithmById(i) for i in workflow]
    # the Toolbox sorts by group, then by name: the workflow group first, then its steps in order
    assert len({a.group() for a in algs}) == 1
    assert min(a.group() for a in provider.algorithms()) == algs[0].group()
    assert [a.displayName() for a in sorted(algs, key=lambda a: a.displayName())] == [a.displayName() for a in algs]
    advanced = QgsProcessingParameterDefinition.FlagAdvanced
    train = algs[1]
    flagged = {p.name() for p in train.parameterDefinitions() if p.flags() & advanced}
    assert {"ITERATIONS", "BATCH_SIZE", "PATCH_SIZE", "STRIDE", "DEVICE", "SEED", "MODE"} <= flagged
    assert not flagged & {"FIRST", "SECOND", "STEPS", "PRESET", "OUTPUT_MODEL"}
    for alg in algs:
        assert alg.helpUrl().startswith("https://") and "README.md#" in alg.helpUrl()
        assert alg.shortHelpString()
    for alg in algs[1:]:
        for p in alg.parameterDefinitions():
            assert p.help(), (alg.id(), p.name())
    for alg_id in ("inbetween:generateframes", "inbetween:exportfield"):
        alg = registry.algorithmById(alg_id)
        assert all(alg.parameterDefinition(n).flags() & QgsProcessingParameterDefinition.FlagOptional
                   for n in ("FIRST", "SECOND"))  # taken from the model file when left empty


def test_loading_the_plugin_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, %r); import inbetween; "
            "from inbetween.processing_provider import provider, alg_train, alg_generate, alg_exportfield; "
            "print('torch' in sys.modules)") % str(ROOT / ".qgis-profile" / "python" / "plugins")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_dependency_is_named_with_install_command():
    from inbetween.plugin.dependencies import missing_message, missing_packages

    assert missing_packages() == []
    import inbetween.plugin.dependencies as deps

    deps.REQUIRED["no_such_module_xyz"] = "no-such-package==1.0"
    try:
        message = missing_message()
    finally:
        del deps.REQUIRED["no_such_module_xyz"]
    assert "no-such-package==1.0" in message
    assert "pip install" in message


def test_qgis_process_lists_the_provider():
    result = qgis_process("--json", "list")
    listing = json.loads(result.stdout[result.stdout.index("{"):])
    assert "inbetween" in listing["providers"]
    assert ALGORITHMS <= set(listing["providers"]["inbetween"]["algorithms"])


def test_qgis_process_help_shows_parameters():
    result = qgis_process("help", "inbetween:train")
    for name in ("FIRST", "SECOND", "STEPS", "PRESET", "OUTPUT_MODEL"):
        assert name in result.stdout
