from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OutputStream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_STREAM_UNSPECIFIED: _ClassVar[OutputStream]
    STDOUT: _ClassVar[OutputStream]
    STDERR: _ClassVar[OutputStream]

class TaskOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_OUTCOME_UNSPECIFIED: _ClassVar[TaskOutcome]
    SUCCEEDED: _ClassVar[TaskOutcome]
    FAILED: _ClassVar[TaskOutcome]
    CANCELLED: _ClassVar[TaskOutcome]
    TIMED_OUT: _ClassVar[TaskOutcome]
    REJECTED: _ClassVar[TaskOutcome]
OUTPUT_STREAM_UNSPECIFIED: OutputStream
STDOUT: OutputStream
STDERR: OutputStream
TASK_OUTCOME_UNSPECIFIED: TaskOutcome
SUCCEEDED: TaskOutcome
FAILED: TaskOutcome
CANCELLED: TaskOutcome
TIMED_OUT: TaskOutcome
REJECTED: TaskOutcome

class JoinRequest(_message.Message):
    __slots__ = ("node_id", "invite_token", "version", "platform")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    INVITE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    invite_token: str
    version: str
    platform: str
    def __init__(self, node_id: _Optional[str] = ..., invite_token: _Optional[str] = ..., version: _Optional[str] = ..., platform: _Optional[str] = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = ("node_id", "credential")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    credential: str
    def __init__(self, node_id: _Optional[str] = ..., credential: _Optional[str] = ...) -> None: ...

class NodeMessage(_message.Message):
    __slots__ = ("hello", "heartbeat", "task_started", "task_output", "task_result", "credential_ack", "goodbye", "terminal_opened", "terminal_output", "terminal_exit")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    TASK_STARTED_FIELD_NUMBER: _ClassVar[int]
    TASK_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TASK_RESULT_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_ACK_FIELD_NUMBER: _ClassVar[int]
    GOODBYE_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_OPENED_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_EXIT_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    heartbeat: Heartbeat
    task_started: TaskStarted
    task_output: TaskOutput
    task_result: TaskResult
    credential_ack: CredentialAck
    goodbye: Goodbye
    terminal_opened: TerminalOpened
    terminal_output: TerminalOutput
    terminal_exit: TerminalExit
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., task_started: _Optional[_Union[TaskStarted, _Mapping]] = ..., task_output: _Optional[_Union[TaskOutput, _Mapping]] = ..., task_result: _Optional[_Union[TaskResult, _Mapping]] = ..., credential_ack: _Optional[_Union[CredentialAck, _Mapping]] = ..., goodbye: _Optional[_Union[Goodbye, _Mapping]] = ..., terminal_opened: _Optional[_Union[TerminalOpened, _Mapping]] = ..., terminal_output: _Optional[_Union[TerminalOutput, _Mapping]] = ..., terminal_exit: _Optional[_Union[TerminalExit, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("version", "platform", "hostname", "capabilities", "held_tasks", "python_version", "os_name", "terminal_ids", "terminal_input_keys")
    class CapabilitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    HELD_TASKS_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    OS_NAME_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_IDS_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_INPUT_KEYS_FIELD_NUMBER: _ClassVar[int]
    version: str
    platform: str
    hostname: str
    capabilities: _containers.ScalarMap[str, bool]
    held_tasks: _containers.RepeatedCompositeFieldContainer[HeldTask]
    python_version: str
    os_name: str
    terminal_ids: _containers.RepeatedScalarFieldContainer[str]
    terminal_input_keys: bool
    def __init__(self, version: _Optional[str] = ..., platform: _Optional[str] = ..., hostname: _Optional[str] = ..., capabilities: _Optional[_Mapping[str, bool]] = ..., held_tasks: _Optional[_Iterable[_Union[HeldTask, _Mapping]]] = ..., python_version: _Optional[str] = ..., os_name: _Optional[str] = ..., terminal_ids: _Optional[_Iterable[str]] = ..., terminal_input_keys: _Optional[bool] = ...) -> None: ...

class HeldTask(_message.Message):
    __slots__ = ("task_id", "last_seq", "finished")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    last_seq: int
    finished: bool
    def __init__(self, task_id: _Optional[str] = ..., last_seq: _Optional[int] = ..., finished: _Optional[bool] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("stats",)
    STATS_FIELD_NUMBER: _ClassVar[int]
    stats: NodeStats
    def __init__(self, stats: _Optional[_Union[NodeStats, _Mapping]] = ...) -> None: ...

class NodeStats(_message.Message):
    __slots__ = ("cpu_percent", "cpu_per_core", "cpu_count", "cpu_freq_mhz", "memory_used", "memory_total", "memory_available", "memory_percent", "load_avg", "active_tasks")
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    CPU_PER_CORE_FIELD_NUMBER: _ClassVar[int]
    CPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    CPU_FREQ_MHZ_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_FIELD_NUMBER: _ClassVar[int]
    MEMORY_AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    LOAD_AVG_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_TASKS_FIELD_NUMBER: _ClassVar[int]
    cpu_percent: float
    cpu_per_core: _containers.RepeatedScalarFieldContainer[float]
    cpu_count: int
    cpu_freq_mhz: float
    memory_used: int
    memory_total: int
    memory_available: int
    memory_percent: float
    load_avg: _containers.RepeatedScalarFieldContainer[float]
    active_tasks: int
    def __init__(self, cpu_percent: _Optional[float] = ..., cpu_per_core: _Optional[_Iterable[float]] = ..., cpu_count: _Optional[int] = ..., cpu_freq_mhz: _Optional[float] = ..., memory_used: _Optional[int] = ..., memory_total: _Optional[int] = ..., memory_available: _Optional[int] = ..., memory_percent: _Optional[float] = ..., load_avg: _Optional[_Iterable[float]] = ..., active_tasks: _Optional[int] = ...) -> None: ...

class TaskStarted(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class TaskOutput(_message.Message):
    __slots__ = ("task_id", "seq", "stream", "data")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    seq: int
    stream: OutputStream
    data: bytes
    def __init__(self, task_id: _Optional[str] = ..., seq: _Optional[int] = ..., stream: _Optional[_Union[OutputStream, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ("task_id", "outcome", "exit_code", "error_code", "error_message", "last_seq", "result_json")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    outcome: TaskOutcome
    exit_code: int
    error_code: str
    error_message: str
    last_seq: int
    result_json: bytes
    def __init__(self, task_id: _Optional[str] = ..., outcome: _Optional[_Union[TaskOutcome, str]] = ..., exit_code: _Optional[int] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ..., last_seq: _Optional[int] = ..., result_json: _Optional[bytes] = ...) -> None: ...

class CredentialAck(_message.Message):
    __slots__ = ("fingerprint",)
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    def __init__(self, fingerprint: _Optional[str] = ...) -> None: ...

class Goodbye(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class TerminalOpened(_message.Message):
    __slots__ = ("session_id", "pid")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    pid: int
    def __init__(self, session_id: _Optional[str] = ..., pid: _Optional[int] = ...) -> None: ...

class TerminalOutput(_message.Message):
    __slots__ = ("session_id", "seq", "data", "at")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    seq: int
    data: bytes
    at: float
    def __init__(self, session_id: _Optional[str] = ..., seq: _Optional[int] = ..., data: _Optional[bytes] = ..., at: _Optional[float] = ...) -> None: ...

class TerminalExit(_message.Message):
    __slots__ = ("session_id", "exit_code", "last_seq", "error_code", "error_message")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    exit_code: int
    last_seq: int
    error_code: str
    error_message: str
    def __init__(self, session_id: _Optional[str] = ..., exit_code: _Optional[int] = ..., last_seq: _Optional[int] = ..., error_code: _Optional[str] = ..., error_message: _Optional[str] = ...) -> None: ...

class HubMessage(_message.Message):
    __slots__ = ("welcome", "task_assign", "task_cancel", "policy_update", "credential_rotation", "output_ack", "result_ack", "reconnect", "file_chunk", "terminal_open", "terminal_input", "terminal_resize", "terminal_close", "terminal_ack")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    TASK_ASSIGN_FIELD_NUMBER: _ClassVar[int]
    TASK_CANCEL_FIELD_NUMBER: _ClassVar[int]
    POLICY_UPDATE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_ROTATION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ACK_FIELD_NUMBER: _ClassVar[int]
    RESULT_ACK_FIELD_NUMBER: _ClassVar[int]
    RECONNECT_FIELD_NUMBER: _ClassVar[int]
    FILE_CHUNK_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_OPEN_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_INPUT_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_RESIZE_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_CLOSE_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ACK_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    task_assign: TaskAssign
    task_cancel: TaskCancel
    policy_update: PolicyUpdate
    credential_rotation: CredentialRotation
    output_ack: OutputAck
    result_ack: ResultAck
    reconnect: Reconnect
    file_chunk: FileChunk
    terminal_open: TerminalOpen
    terminal_input: TerminalInput
    terminal_resize: TerminalResize
    terminal_close: TerminalClose
    terminal_ack: TerminalAck
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., task_assign: _Optional[_Union[TaskAssign, _Mapping]] = ..., task_cancel: _Optional[_Union[TaskCancel, _Mapping]] = ..., policy_update: _Optional[_Union[PolicyUpdate, _Mapping]] = ..., credential_rotation: _Optional[_Union[CredentialRotation, _Mapping]] = ..., output_ack: _Optional[_Union[OutputAck, _Mapping]] = ..., result_ack: _Optional[_Union[ResultAck, _Mapping]] = ..., reconnect: _Optional[_Union[Reconnect, _Mapping]] = ..., file_chunk: _Optional[_Union[FileChunk, _Mapping]] = ..., terminal_open: _Optional[_Union[TerminalOpen, _Mapping]] = ..., terminal_input: _Optional[_Union[TerminalInput, _Mapping]] = ..., terminal_resize: _Optional[_Union[TerminalResize, _Mapping]] = ..., terminal_close: _Optional[_Union[TerminalClose, _Mapping]] = ..., terminal_ack: _Optional[_Union[TerminalAck, _Mapping]] = ...) -> None: ...

class SandboxPolicy(_message.Message):
    __slots__ = ("mode", "allowed_commands", "denied_commands", "sensitive_commands", "workspace_root", "browser_policy_json", "allow_terminals")
    class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PERMISSIVE: _ClassVar[SandboxPolicy.Mode]
        STRICT: _ClassVar[SandboxPolicy.Mode]
    PERMISSIVE: SandboxPolicy.Mode
    STRICT: SandboxPolicy.Mode
    MODE_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_COMMANDS_FIELD_NUMBER: _ClassVar[int]
    DENIED_COMMANDS_FIELD_NUMBER: _ClassVar[int]
    SENSITIVE_COMMANDS_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_ROOT_FIELD_NUMBER: _ClassVar[int]
    BROWSER_POLICY_JSON_FIELD_NUMBER: _ClassVar[int]
    ALLOW_TERMINALS_FIELD_NUMBER: _ClassVar[int]
    mode: SandboxPolicy.Mode
    allowed_commands: _containers.RepeatedScalarFieldContainer[str]
    denied_commands: _containers.RepeatedScalarFieldContainer[str]
    sensitive_commands: _containers.RepeatedScalarFieldContainer[str]
    workspace_root: str
    browser_policy_json: str
    allow_terminals: bool
    def __init__(self, mode: _Optional[_Union[SandboxPolicy.Mode, str]] = ..., allowed_commands: _Optional[_Iterable[str]] = ..., denied_commands: _Optional[_Iterable[str]] = ..., sensitive_commands: _Optional[_Iterable[str]] = ..., workspace_root: _Optional[str] = ..., browser_policy_json: _Optional[str] = ..., allow_terminals: _Optional[bool] = ...) -> None: ...

class SkillConfig(_message.Message):
    __slots__ = ("shell", "files", "browser", "max_concurrent_tasks")
    SHELL_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    BROWSER_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENT_TASKS_FIELD_NUMBER: _ClassVar[int]
    shell: bool
    files: bool
    browser: bool
    max_concurrent_tasks: int
    def __init__(self, shell: _Optional[bool] = ..., files: _Optional[bool] = ..., browser: _Optional[bool] = ..., max_concurrent_tasks: _Optional[int] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("policy", "skills", "heartbeat_interval_s", "acked_seq", "abandon_task_ids")
    class AckedSeqEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    POLICY_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    ACKED_SEQ_FIELD_NUMBER: _ClassVar[int]
    ABANDON_TASK_IDS_FIELD_NUMBER: _ClassVar[int]
    policy: SandboxPolicy
    skills: SkillConfig
    heartbeat_interval_s: float
    acked_seq: _containers.ScalarMap[str, int]
    abandon_task_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, policy: _Optional[_Union[SandboxPolicy, _Mapping]] = ..., skills: _Optional[_Union[SkillConfig, _Mapping]] = ..., heartbeat_interval_s: _Optional[float] = ..., acked_seq: _Optional[_Mapping[str, int]] = ..., abandon_task_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class TaskAssign(_message.Message):
    __slots__ = ("task_id", "kind", "payload_json", "timeout_s", "idempotency_key")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    kind: str
    payload_json: bytes
    timeout_s: float
    idempotency_key: str
    def __init__(self, task_id: _Optional[str] = ..., kind: _Optional[str] = ..., payload_json: _Optional[bytes] = ..., timeout_s: _Optional[float] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class FileChunk(_message.Message):
    __slots__ = ("task_id", "offset", "data", "eof")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    offset: int
    data: bytes
    eof: bool
    def __init__(self, task_id: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., eof: _Optional[bool] = ...) -> None: ...

class TaskCancel(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PolicyUpdate(_message.Message):
    __slots__ = ("policy", "skills")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    policy: SandboxPolicy
    skills: SkillConfig
    def __init__(self, policy: _Optional[_Union[SandboxPolicy, _Mapping]] = ..., skills: _Optional[_Union[SkillConfig, _Mapping]] = ...) -> None: ...

class CredentialRotation(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: str
    def __init__(self, credential: _Optional[str] = ...) -> None: ...

class OutputAck(_message.Message):
    __slots__ = ("task_id", "seq")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    seq: int
    def __init__(self, task_id: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class ResultAck(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class Reconnect(_message.Message):
    __slots__ = ("reason", "after_s")
    REASON_FIELD_NUMBER: _ClassVar[int]
    AFTER_S_FIELD_NUMBER: _ClassVar[int]
    reason: str
    after_s: float
    def __init__(self, reason: _Optional[str] = ..., after_s: _Optional[float] = ...) -> None: ...

class TerminalOpen(_message.Message):
    __slots__ = ("session_id", "cols", "rows")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    cols: int
    rows: int
    def __init__(self, session_id: _Optional[str] = ..., cols: _Optional[int] = ..., rows: _Optional[int] = ...) -> None: ...

class TerminalInput(_message.Message):
    __slots__ = ("session_id", "data", "seq", "key")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    data: bytes
    seq: int
    key: str
    def __init__(self, session_id: _Optional[str] = ..., data: _Optional[bytes] = ..., seq: _Optional[int] = ..., key: _Optional[str] = ...) -> None: ...

class TerminalResize(_message.Message):
    __slots__ = ("session_id", "cols", "rows", "seq", "key")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    cols: int
    rows: int
    seq: int
    key: str
    def __init__(self, session_id: _Optional[str] = ..., cols: _Optional[int] = ..., rows: _Optional[int] = ..., seq: _Optional[int] = ..., key: _Optional[str] = ...) -> None: ...

class TerminalClose(_message.Message):
    __slots__ = ("session_id", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    reason: str
    def __init__(self, session_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TerminalAck(_message.Message):
    __slots__ = ("session_id", "seq", "final")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    seq: int
    final: bool
    def __init__(self, session_id: _Optional[str] = ..., seq: _Optional[int] = ..., final: _Optional[bool] = ...) -> None: ...
