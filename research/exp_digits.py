import time, numpy as np, torch
torch.set_num_threads(2)
from engine.data import *; from engine.graph import *; from engine.features import *
from sklearn.decomposition import PCA
xtr,ytr,xte,yte=load_dataset('digits')
X=to_float(np.concatenate([xtr,xte])); n=len(xtr)
for name,feat in [('pix',X.reshape(len(X),-1)),('pca20',PCA(20,random_state=0).fit_transform(X.reshape(len(X),-1))),('deskew-pix',deskew(X).reshape(len(X),-1))]:
  for k in [5,10,15]:
    t=time.time(); idx,dist=knn(feat,k); W=knn_graph(idx,dist)
    res=[]
    for seed in range(3):
        lab=sample_labels(ytr,5,seed)
        for meth,f in [('poisson',poisson_learning),('laplace',laplace_learning),('spread',label_spreading)]:
            u=f(W,lab,ytr[lab],10); res.append((meth,seed,np.mean(u.argmax(1)[n:]==yte)))
    print(name,k,f'{time.time()-t:.2f}s',' '.join(f'{m}{s}:{a:.3f}' for m,s,a in res))
