"""The GPU catalogue: data sanity, runtime totals from real logs/readings, name resolution, user files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vramplan.errors import InputError, UnknownGPUError
from vramplan.hardware import (
    GPU,
    custom_gpu,
    list_gpus,
    load_catalogue,
    normalize_gpu_name,
    resolve_gpu,
)
from vramplan.units import GiB, MiB

CATALOGUE = list_gpus()

REQUIRED = [
    "A100-40GB-SXM",
    "A100-40GB-PCIe",
    "A100-80GB-SXM",
    "A100-80GB-PCIe",
    "H100-80GB-SXM",
    "H100-80GB-PCIe",
    "H100-NVL-94GB",
    "H200-141GB",
    "B200",
    "GH200-96GB",
    "L40S",
    "L40",
    "L4",
    "A10G",
    "A10",
    "A40",
    "T4",
    "V100-16GB",
    "V100-32GB",
    "RTX-3090",
    "RTX-4090",
    "RTX-4080",
    "RTX-5090",
    "RTX-A6000",
    "RTX-6000-Ada",
    "MI250X",
    "MI300X",
    "MI325X",
]


def test_required_entries_present():
    names = {g.name for g in CATALOGUE}
    assert set(REQUIRED) <= names


@pytest.mark.parametrize("gpu", CATALOGUE, ids=lambda g: g.name)
def test_every_alias_resolves_to_its_entry(gpu: GPU):
    assert resolve_gpu(gpu.name) is gpu
    for alias in gpu.aliases:
        assert resolve_gpu(alias) is gpu, alias
        assert resolve_gpu(alias.upper()) is gpu
        assert resolve_gpu(alias.lower().replace(" ", "_")) is gpu


def test_no_alias_shared_between_entries():
    owner: dict[str, str] = {}
    for gpu in CATALOGUE:
        for label in {normalize_gpu_name(x) for x in (gpu.name, *gpu.aliases)}:
            assert label not in owner, f"{label!r} in both {owner[label]} and {gpu.name}"
            owner[label] = gpu.name


@pytest.mark.parametrize(
    "query, expected",
    [
        ("h100 80gb", "H100-80GB-SXM"),
        ("H100_80GB", "H100-80GB-SXM"),
        ("NVIDIA H100 80GB HBM3", "H100-80GB-SXM"),
        ("H100", "H100-80GB-SXM"),
        ("A100-SXM4-40GB", "A100-40GB-SXM"),
        ("NVIDIA A100-SXM4-80GB", "A100-80GB-SXM"),
        ("NVIDIA A100 80GB PCIe", "A100-80GB-PCIe"),
        ("a100-80gb", "A100-80GB-SXM"),
        ("rtx4090", "RTX-4090"),
        ("4090", "RTX-4090"),
        ("NVIDIA GeForce RTX 4090", "RTX-4090"),
        ("Tesla T4", "T4"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA H100 PCIe", "H100-80GB-PCIe"),
        ("NVIDIA H100 NVL", "H100-NVL-94GB"),
        ("NVIDIA H200", "H200-141GB"),
        ("AMD Instinct MI300X", "MI300X"),
    ],
)
def test_resolution_forms(query: str, expected: str):
    assert resolve_gpu(query).name == expected


# Runtime totals as real startup/OOM logs print them (GiB, two decimals) or as read on a card here.
@pytest.mark.parametrize(
    "name, printed",
    [
        # Read on the project's lent H100 (driver 580.159.04): 85017493504 B. vLLM logs from other drivers
        # print 79.19 GiB; the reading wins because it is byte-exact (see the entry's notes).
        ("H100-80GB-SXM", "79.18"),
        ("H200-141GB", "139.80"),
        ("A100-80GB-SXM", "79.15"),
        ("A100-40GB-SXM", "39.39"),
        ("L40", "44.39"),
        ("L40S", "44.39"),
        ("RTX-3090", "23.58"),
        ("A10", "22.06"),
        ("T4", "14.74"),
    ],
)
def test_runtime_totals_match_logs(name: str, printed: str):
    assert f"{resolve_gpu(name).memory_bytes / GiB:.2f}" == printed


def test_measured_totals_are_byte_exact():
    assert resolve_gpu("NVIDIA H100 80GB HBM3").memory_bytes == 85017493504
    assert resolve_gpu("NVIDIA H200").memory_bytes == 150109880320


@pytest.mark.parametrize("gpu", CATALOGUE, ids=lambda g: g.name)
def test_memory_fields(gpu: GPU):
    assert isinstance(gpu.memory_bytes, int) and gpu.memory_bytes > 0
    assert gpu.memory_source in {"measured", "log", "derived", "spec"}
    assert "memory_bytes" in gpu.sources
    if gpu.memory_source == "derived":
        assert gpu.sources["memory_bytes"].startswith("derived")
    if gpu.vendor == "nvidia" and gpu.unified_memory:
        # nvidia-smi shows no memory total on unified parts; CUDA reports the OS-visible pool.
        assert gpu.nvidia_smi_total_mib is None and "unified" in gpu.notes
    elif gpu.vendor == "nvidia":
        assert gpu.nvidia_smi_total_mib is not None
        # The runtime total is nvidia-smi's total minus the driver's reservation (a few hundred MiB, < 2%).
        reserved = gpu.nvidia_smi_total_mib * MiB - gpu.memory_bytes
        assert 0 < reserved < 0.02 * gpu.nvidia_smi_total_mib * MiB
        assert gpu.compute_capability
    # Vendors' "80 GB" is 80 GiB (81920 MiB); the runtime sees less than that.
    assert gpu.memory_bytes < gpu.marketing_memory_gb * GiB
    assert gpu.memory_bytes > 0.9 * gpu.marketing_memory_gb * GiB


def test_memory_below_marketing_for_nvidia_datacenter():
    datacenter = [g for g in CATALOGUE if g.vendor == "nvidia" and not g.name.startswith("RTX")]
    assert len(datacenter) >= 18
    for gpu in datacenter:
        assert gpu.memory_bytes < gpu.marketing_memory_gb * GiB, gpu.name


@pytest.mark.parametrize("gpu", CATALOGUE, ids=lambda g: g.name)
def test_rates_positive_and_ordered(gpu: GPU):
    assert gpu.memory_bandwidth_bytes_per_s and gpu.memory_bandwidth_bytes_per_s > 1e11
    rates = dataclasses.asdict(gpu.flops)
    for dtype, rate in rates.items():
        assert rate is None or (isinstance(rate, int) and rate > 0), dtype
    assert gpu.flops.fp32 and gpu.flops.fp16
    if gpu.flops.bf16 is not None:
        assert gpu.flops.bf16 >= gpu.flops.fp32
    if gpu.flops.fp8 is not None:
        assert gpu.flops.fp8 >= gpu.flops.bf16
    if gpu.flops.fp4 is not None:
        assert gpu.flops.fp4 >= gpu.flops.fp8
    # dense figures, not the starred sparse ones: H100 SXM bf16 is 989.4 TFLOP/s, not 1979
    ic = gpu.interconnect
    for value in (ic.nvlink_bytes_per_s, ic.infinity_fabric_bytes_per_s, ic.pcie_bytes_per_s):
        assert value is None or value > 0
    assert gpu.price_per_hour_usd is None or gpu.price_per_hour_usd > 0
    assert gpu.tdp_watts is None or gpu.tdp_watts > 0


def test_known_datasheet_figures():
    h100 = resolve_gpu("H100")
    assert h100.flops.bf16 == 989_400_000_000_000
    assert h100.memory_bandwidth_bytes_per_s == 3_350_000_000_000
    assert h100.interconnect.nvlink_bytes_per_s == 900_000_000_000
    assert resolve_gpu("T4").flops.bf16 is None
    assert resolve_gpu("B200").flops.fp4 is not None
    assert resolve_gpu("A100-80GB").flops.fp8 is None


def test_unknown_gpu_suggests_three_closest():
    with pytest.raises(UnknownGPUError) as info:
        resolve_gpu("H100 90GB")
    message = str(info.value)
    assert message.startswith("unknown GPU 'H100 90GB'. Closest: H100-80GB-SXM, ")
    assert message.count(",") >= 2
    assert "--gpu-memory" in message
    with pytest.raises(UnknownGPUError, match=r"Closest: RTX-4090, RTX-4080, RTX-5070-Ti"):
        resolve_gpu("rtx 4070")
    assert isinstance(info.value, InputError)


def test_catalogue_loaded_once():
    assert load_catalogue() is load_catalogue()
    assert list_gpus() is load_catalogue()


def test_user_file_adds_and_overrides(tmp_path: Path):
    path = tmp_path / "my_gpus.json"
    path.write_text(
        json.dumps(
            {
                "gpus": [
                    {
                        "name": "MyCard-20GB",
                        "aliases": ["ACME MyCard 20GB"],
                        "vendor": "acme",
                        "memory_bytes": "19.5GiB",
                        "memory_bandwidth_bytes_per_s": 5e11,
                        "flops": {"bf16": 1e14},
                    },
                    {"name": "T4", "memory_bytes": 15_000_000_000, "aliases": ["Tesla T4"]},
                ]
            }
        )
    )
    catalogue = load_catalogue(path)
    mine = resolve_gpu("acme mycard 20gb", catalogue)
    assert mine.name == "MyCard-20GB"
    assert mine.memory_bytes == int(19.5 * GiB)
    assert mine.flops.bf16 == 10**14 and mine.flops.fp32 is None
    assert resolve_gpu("tesla t4", catalogue).memory_bytes == 15_000_000_000
    assert len(catalogue) == len(CATALOGUE) + 1
    # the built-in catalogue is untouched
    assert resolve_gpu("Tesla T4").memory_bytes != 15_000_000_000


@pytest.mark.parametrize(
    "entry, field_name",
    [
        ({"name": "X", "memory_bytes": "lots"}, "memory_bytes"),
        ({"name": "X"}, "memory_bytes"),
        (
            {"name": "X", "memory_bytes": 10**9, "memory_bandwith_bytes_per_s": 1e12},
            "memory_bandwith_bytes_per_s",
        ),
        ({"name": "X", "memory_bytes": 10**9, "flops": {"bf16": -1}}, "flops.bf16"),
        ({"name": "X", "memory_bytes": -5}, "memory_bytes"),
    ],
)
def test_malformed_user_file_names_the_field(tmp_path: Path, entry: dict, field_name: str):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"gpus": [entry]}))
    with pytest.raises(InputError) as info:
        load_catalogue(path)
    message = str(info.value)
    assert f"field '{field_name}'" in message
    assert "bad.json" in message and "'X'" in message


def test_user_file_not_json_or_missing(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_catalogue(path)
    with pytest.raises(InputError, match="cannot read GPU file"):
        load_catalogue(tmp_path / "absent.json")


def test_custom_gpu():
    gpu = custom_gpu("24GiB")
    assert gpu.memory_bytes == 24 * 2**30
    assert (
        gpu.name == "custom" and gpu.flops.bf16 is None and gpu.memory_bandwidth_bytes_per_s is None
    )
    assert custom_gpu(10**10, name="box").memory_bytes == 10**10
    with pytest.raises(InputError):
        custom_gpu("twenty gigs")


def test_gpu_is_frozen_and_hashable():
    gpu = resolve_gpu("L4")
    with pytest.raises(dataclasses.FrozenInstanceError):
        gpu.memory_bytes = 1  # type: ignore[misc]
    assert hash(gpu) == hash(resolve_gpu("NVIDIA L4"))


def test_shipped_catalogue_passes_the_user_file_schema() -> None:
    """The built-in file is read without pydantic at start-up; here it goes through the strict schema."""
    import json
    from importlib import resources

    from vramplan.hardware import _builtin, _parse_entries

    data = json.loads(
        resources.files("vramplan").joinpath("data/gpus.json").read_text(encoding="utf-8")
    )
    assert tuple(_parse_entries(data, "shipped")) == _builtin()


# nvidia-smi --query-gpu=name prints these; each must resolve to its catalogue row.
NVIDIA_SMI_NAMES = {
    "NVIDIA A100-SXM4-80GB": "A100-80GB-SXM",
    "NVIDIA H100 80GB HBM3": "H100-80GB-SXM",
    "NVIDIA H200 NVL": "H200-NVL",
    "NVIDIA GeForce RTX 3090 Ti": "RTX-3090-Ti",
    "NVIDIA GeForce RTX 4060 Ti": "RTX-4060-Ti-16GB",
    "NVIDIA GeForce RTX 5080": "RTX-5080",
    "NVIDIA GeForce RTX 5070 Ti": "RTX-5070-Ti",
    "NVIDIA GeForce RTX 5060 Ti": "RTX-5060-Ti-16GB",
    "NVIDIA RTX PRO 6000 Blackwell Server Edition": "RTX-PRO-6000-Blackwell",
    "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition": "RTX-PRO-6000-Blackwell",
    "NVIDIA GB10": "GB10",
    "NVIDIA GB200": "GB200",
    "NVIDIA GB300": "GB300",
    "NVIDIA B300 SXM6 AC": "B300",
    "NVIDIA H20": "H20",
    "NVIDIA L20": "L20",
    "NVIDIA H800": "H800",
    "NVIDIA A800-SXM4-80GB": "A800-80GB-SXM",
    "AMD Instinct MI355X": "MI355X",
    "Tesla V100-PCIE-16GB": "V100-16GB",
}


@pytest.mark.parametrize("smi_name", sorted(NVIDIA_SMI_NAMES))
def test_nvidia_smi_names_resolve(smi_name: str) -> None:
    assert resolve_gpu(smi_name).name == NVIDIA_SMI_NAMES[smi_name]


def test_derived_memory_follows_its_stated_reference() -> None:
    """A 'derived' runtime total is the nvidia-smi total minus the reference card's reserved share.

    Recomputed here from the reference row the source text names, so an edited row that no longer
    matches its stated derivation fails.
    """
    import re

    mib = 1 << 20
    by_name = {g.name: g for g in list_gpus()}
    pattern = re.compile(
        r"nvidia-smi total (\d+) MiB minus (\d+) MiB reserved .*reference card (\S+): (\d+) of (\d+) MiB"
    )
    checked = 0
    for gpu in by_name.values():
        m = pattern.search(gpu.sources.get("memory_bytes", ""))
        if gpu.memory_source != "derived" or m is None:
            continue
        total, reserved, ref, ref_reserved, ref_total = m.groups()
        reference = by_name[ref.rstrip(",")]
        assert reference.nvidia_smi_total_mib == int(ref_total)
        assert int(ref_total) - round(reference.memory_bytes / mib) == int(ref_reserved)
        assert int(reserved) == round(int(total) * int(ref_reserved) / int(ref_total))
        assert gpu.nvidia_smi_total_mib == int(total)
        assert gpu.memory_bytes == (int(total) - int(reserved)) * mib
        checked += 1
    assert checked >= 20


def test_unified_memory_parts_say_so() -> None:
    gb10 = resolve_gpu("DGX Spark")
    assert gb10.unified_memory and "unified" in gb10.notes
    assert not resolve_gpu("H100").unified_memory
    assert gb10.compute_capability == "12.1"


def test_gpu_from_is_the_one_lookup() -> None:
    from vramplan.hardware import gpu_from
    from vramplan.units import GiB

    h100 = gpu_from("H100")
    assert h100 is not None and h100.name == "H100-80GB-SXM"
    assert gpu_from(h100) is h100
    assert gpu_from() is None
    with pytest.raises(InputError, match="no GPU given"):
        gpu_from(required=True)
    # a name with a size keeps the catalogue's facts and takes the user's memory
    sized = gpu_from("T4", "15GiB")
    assert sized is not None
    assert (sized.name, sized.memory_bytes, sized.compute_capability) == ("T4", 15 * GiB, "7.5")
    assert sized.memory_source == "user"
    bare = gpu_from(None, "24GiB", label="log total")
    assert bare is not None and (bare.name, bare.memory_bytes) == ("log total", 24 * GiB)
    unknown = gpu_from("my-card", "24GiB")  # the size is authoritative; the name only labels it
    assert unknown is not None and unknown.name == "my-card" and unknown.compute_capability is None
    with pytest.raises(UnknownGPUError):
        gpu_from("my-card")
