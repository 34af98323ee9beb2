"""tools/launch.py writes launcher commands whose only change to the config is trainer overrides."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("launch", ROOT / "tools/launch.py")
launch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launch)


def test_slurm_script_has_resources_and_overrides():
    text = launch.main(["slurm", "configs/toy/mlp.yaml", "seed=3", "--nodes", "4", "--gpus-per-node", "8"])
    assert "#SBATCH --nodes=4" in text and "#SBATCH --ntasks-per-node=8" in text
    assert "trainer.num_nodes=4" in text and "trainer.devices=8" in text and "seed=3" in text
    assert "trainer.resume=last" in text


def test_torchrun_command():
    text = launch.main(["torchrun", "configs/toy/mlp.yaml", "--nodes", "2", "--gpus-per-node", "2",
                        "--strategy", "fsdp", "--master-addr", "node0"])
    assert "--nnodes=2" in text and "--nproc_per_node=2" in text and "--master_addr=node0" in text
    assert "trainer.strategy=fsdp" in text and "-m worldgen.cli train" in text
