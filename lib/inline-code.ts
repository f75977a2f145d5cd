/**
 * Source of a small function that CloudFormation carries inline (Lambda `ZipFile`, Synthetics `Script`):
 * a TypeScript module of lib/functions/, transpiled to one CommonJS file at synth. The code that runs is
 * the code the tests import, and no bundling step or asset upload is involved. Such a module may import
 * node built-ins and what its runtime provides (the AWS SDK), nothing of ours.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

/** Lambda caps inline code (`ZipFile`) at 4 MB; these modules are a few KB, so this flags a mistake. */
const MAX_INLINE_BYTES = 64 * 1024;

export function inlineFunctionSource(moduleName: string): string {
  const file = path.join(__dirname, 'functions', `${moduleName}.ts`);
  const source = fs.readFileSync(file, 'utf8');
  const relativeImports = [...source.matchAll(/from '(\.[^']*)'/g)].map((m) => m[1]);
  if (relativeImports.length > 0) {
    throw new Error(
      `${file} imports ${relativeImports.join(', ')}; inline code is one file, so it may import node ` +
        "built-ins and its runtime's packages only",
    );
  }
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      removeComments: true,
      esModuleInterop: true,
    },
    fileName: path.basename(file),
  });
  if (Buffer.byteLength(outputText) > MAX_INLINE_BYTES) {
    throw new Error(`${file} transpiles to more than ${MAX_INLINE_BYTES} bytes; make it an asset instead`);
  }
  return outputText;
}
