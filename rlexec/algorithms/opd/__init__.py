"""Oracle Policy Distillation (Fang et al., AAAI 2021; spec 2): student, OPDS ablation, and the OPD network.

* :mod:`.config`: ``OPDConfig`` / ``OPD`` (RLlib PPO plus ``distillation_coeff`` and ``teacher_checkpoint``)
* :mod:`.learner`: ``OPDLearner``, PPO's loss plus ``mu * NLL(teacher action)``
* :mod:`.connectors`: ``TeacherActionConnector``, the frozen teacher's actions as a train-batch column
* :mod:`.module`: ``OPDRecurrentModule``, the spec-2.3 windowed-GRU network (also used by PPO and the teacher)
"""

from rlexec.algorithms.registry import AlgorithmEntry, ModuleEntry, register_algorithm, register_module

register_algorithm(AlgorithmEntry(
    name="opd", config_class="rlexec.algorithms.opd.config:OPDConfig",
    description="OPD student (distillation_coeff > 0) or OPDS (distillation_coeff: 0), spec 2.2",
))
register_module(ModuleEntry(
    name="opd", spec_builder="rlexec.algorithms.opd.module:module_spec",
    description="the OPD windowed-GRU network (spec 2.3); takes its shape from the bar env's execution settings",
))
