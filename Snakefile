# LNCLIP-DF: generalisable face-deepfake detection, from download to results/report.html.
#
#   snakemake --cores 16 results/report.html                                      # real protocol
#   snakemake --workflow-profile profiles/demo                                    # offline demo
#
# Stages, one rule file each in workflow/rules/ and one package each in pipeline/: fetch (downloads)
# -> datasets (index, a checkpoint; import_crops; manifest) -> faces (one job per chunk of videos)
# -> training (one job per model) -> evaluation (model x benchmark) -> report. All logic lives in the
# `pipeline` package; scripts in workflow/scripts/ are adapters.

from snakemake.utils import min_version

min_version("9.20")


# A --configfile replaces config.yaml instead of merging into it, so the demo config does not
# inherit the real protocol's datasets and benchmarks.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


# common.smk validates the config against workflow/schemas/config.schema.yaml (filling in its
# defaults) and checks its cross-references before anything else; a bad key fails naming it.
include: "workflow/rules/common.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/datasets.smk"
include: "workflow/rules/faces.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/predict.smk"


rule all:
    default_target: True
    input:
        REPORT,
