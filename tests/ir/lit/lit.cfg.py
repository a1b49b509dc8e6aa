# lit configuration of the IR text tests: each file is IR text whose `// RUN:` lines
# call tdl-opt and FileCheck. tdl-opt prints only the IR it parsed (never comments), so
# CHECK lines cannot match the echoed input; the prefixes are still unique per file.
import lit.formats

config.name = "tdl-ir"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".ir"]
config.test_source_root = os.path.dirname(__file__)
# Output/ temporaries go to the build tree, never beside the sources.
config.test_exec_root = lit_config.params.get("exec_root", "/tmp/tdl-ir-lit")

tdl_opt = lit_config.params.get("tdl_opt")
filecheck = lit_config.params.get("filecheck", "/usr/lib/llvm-19/bin/FileCheck")
if not tdl_opt:
    lit_config.fatal("pass --param tdl_opt=PATH/tdl-opt")
config.substitutions.append(("%tdl-opt", tdl_opt))
config.substitutions.append(("%FileCheck", filecheck))
config.substitutions.append(("%not", lit_config.params.get("not", "/usr/lib/llvm-19/bin/not")))
